"""Generalisation check: lifters on motion capture that no training run uses (issue 22 item 3).

    python bench/bench_heldout_mocap.py                                  # the shipped general lifter
    python bench/bench_heldout_mocap.py --model demo=/work/cache/demo_base/mpm-lift
    python bench/bench_heldout_mocap.py --source-file assimp_boxing=path/to/Boxing_Toes.bvh
    python bench/bench_heldout_mocap.py --out /tmp/ho.json --merge-into bench/results/heldout_mocap.json \\
        --why "the general lifter was retrained"    # re-measure the general lifter's rows only

Training uses only the repository's motion (plus augmentation); the mocap below stays out of
training and is used here to judge generalisation. Each source is fetched explicitly by this
command into ``bench/extra_mocap/heldout/`` (git-ignored) with an ordinary package client, or
given with ``--source-file NAME=PATH``; the package itself never downloads anything.

=====================  ==========================================================  ==================
name                   where it comes from (fetched with)                          licence
=====================  ==========================================================  ==================
``assimp_boxing``      assimp's test model ``BVH/Boxing_Toes.bvh`` (Debian package  BSD-3-Clause
                       ``assimp-testmodels`` 5.2.5~ds0-1: ``apt-get download``)
``bvhtoolbox_mocapbank``  ``tests/example_files/test_mocapbank.bvh`` of bvhtoolbox  MIT (bvhtoolbox);
                       0.1.3 (PyPI sdist: ``pip download --no-binary :all:``)       MocapBank's terms
                                                                                    not verified
``holosoma_climb_seq_4``  ``demo_data/climb/mocap_climb_seq_4`` of                 Apache-2.0
                       holosoma-retargeting 0.1.0 (PyPI wheel), the fifth climbing
                       take (the repository ships takes 0-3)
=====================  ==========================================================  ==================

(pybullet's DeepMimic clips are not used: see DATA_NOTES.md.)

Conversion (the package's readers): BVH through :func:`modeling_mpm.data.load_bvh_h36m17` with a
joint-name map per skeleton (:data:`BOXING_TO_H36M17`, :data:`MOCAPBANK_TO_H36M17`; file units are
centimetres, Y up); the climbing take through :func:`modeling_mpm.data.load_climb_npy` with the 53
joint names that holosoma-retargeting itself lists (``MOCAP_DEMO_JOINTS`` in its
``config_types/data_type.py``, read as text, not imported). All resampled to 50 Hz: H36M-17 world
positions, metres, Z up.

Evaluation: every sequence is seen through two camera sets -- ``fixed``: the demo's four
validation cameras (:data:`modeling_mpm.data.DEMO_VALIDATION_CAMERAS`); ``real``: eight cameras
drawn once (seed 0) from the ``data.augment: real`` preset's camera sampler (2-8 m, -15..60
degrees, focal 0.7-2.2 frame widths, landscape/square/portrait frames, subject anywhere in the
central 70%; no camera roll: that is part of the preset's motion augmentation, which applies only
to random per-window cameras) -- with clean 2D and with detector-like 2D noise
(:class:`modeling_mpm.data.augment.DetectorNoise2D` with the ``real`` preset's jitter, offsets,
outliers and left/right swaps in proportion to the person's size, no dropped joints: the
evaluation feeds no confidence; fixed seed). Windows (the lifter's length, a centre every
``--stride`` frames) are built once per window length by :class:`modeling_mpm.data.PoseWindowDataset`
and scored by :func:`modeling_mpm.evaluation.evaluate_lifting` (centre frame, root-relative,
flip test-time augmentation unless ``--no-flip``; every lifter sees identical windows). Baseline:
the per-sequence, per-camera mean root-relative pose (input-blind).

Writes ``bench/results/heldout_mocap.json``; :func:`report_section` gives the RESULTS.md section.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import glob
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

from modeling_mpm.data.mocap import JointMap, load_bvh_h36m17, load_climb_npy  # noqa: E402
from modeling_mpm.skeleton import H36M_17  # noqa: E402

CACHE_DIR = os.path.join(C.ROOT, "bench", "extra_mocap", "heldout")
RESULTS_JSON = os.path.join(C.RESULTS_DIR, "heldout_mocap.json")
GENERAL_LIFTER = os.path.join(C.ROOT, "modeling_mpm", "pretrained", "mpm-lift-general")
FPS = 50.0

# ----------------------------------------------------------------------------- joint maps
BOXING_TO_H36M17: JointMap = {
    "pelvis": "Hips", "right_hip": "RightHip", "right_knee": "RightKnee", "right_ankle": "RightAnkle",
    "left_hip": "LeftHip", "left_knee": "LeftKnee", "left_ankle": "LeftAnkle", "spine": "Chest",
    "thorax": "Neck", "neck_nose": "Head", "head_top": "Head_end",
    "left_shoulder": "LeftShoulder", "left_elbow": "LeftElbow", "left_wrist": "LeftWrist",
    "right_shoulder": "RightShoulder", "right_elbow": "RightElbow", "right_wrist": "RightWrist",
}
"""assimp's Boxing_Toes.bvh -> H36M-17. Its spine is Hips -> Ab (8 cm) -> Chest (22 cm) -> Neck (22 cm);
``spine`` = Chest (about midway between pelvis and neck base, as in H36M), ``thorax`` = Neck (where
the collars start), ``head_top`` = the Head's End Site."""

MOCAPBANK_TO_H36M17: JointMap = {
    "pelvis": "Hips", "right_hip": "RightHip", "right_knee": "RightKnee", "right_ankle": "RightAnkle",
    "left_hip": "LeftHip", "left_knee": "LeftKnee", "left_ankle": "LeftAnkle", "spine": "Chest2",
    "thorax": "Neck", "neck_nose": "Head", "head_top": "Head_end",
    "left_shoulder": "LeftShoulder", "left_elbow": "LeftElbow", "left_wrist": "LeftWrist",
    "right_shoulder": "RightShoulder", "right_elbow": "RightElbow", "right_wrist": "RightWrist",
}
"""bvhtoolbox's MocapBank BVH -> H36M-17. Its spine is Hips -> Chest (10 cm) -> Chest2 (16 cm) -> Neck
(17 cm); ``spine`` = Chest2 (the joint nearest the middle), ``head_top`` = the Head's End Site."""

# ----------------------------------------------------------------------------- sources
#: name -> how to get it and read it. ``fetch``: (kind, requirement); ``member``: the file inside.
SOURCES: Dict[str, Dict] = {
    "assimp_boxing": {
        "fetch": ("deb", "assimp-testmodels=5.2.5~ds0-1"),
        "member": "usr/share/assimp/models/BVH/Boxing_Toes.bvh",
        "format": "bvh", "joint_map": BOXING_TO_H36M17, "scale": 0.01,
        "what": "boxing (punches, footwork), 3,069 frames at 100 Hz",
        "origin": "assimp test model BVH/Boxing_Toes.bvh, Debian package assimp-testmodels 5.2.5~ds0-1",
        "licence": "BSD-3-Clause (assimp; debian/copyright 'Files: *')",
    },
    "bvhtoolbox_mocapbank": {
        "fetch": ("sdist", "bvhtoolbox==0.1.3"),
        "member": "bvhtoolbox-0.1.3/tests/example_files/test_mocapbank.bvh",
        "format": "bvh", "joint_map": MOCAPBANK_TO_H36M17, "scale": 0.01,
        "what": "a MocapBank take, 455 frames at 30 Hz",
        "origin": "bvhtoolbox 0.1.3 sdist (PyPI), tests/example_files/test_mocapbank.bvh",
        "licence": "MIT (bvhtoolbox); the original MocapBank terms were not verified",
    },
    "holosoma_climb_seq_4": {
        "fetch": ("wheel", "holosoma-retargeting==0.1.0"),
        "member": "holosoma_retargeting/demo_data/climb/mocap_climb_seq_4/mocap_climb_seq_4_joint_positions_f0-2303.npy",
        "names_member": "holosoma_retargeting/config_types/data_type.py",
        "format": "climb_npy",
        "what": "climbing, the fifth take (2,303 frames, 120 Hz assumed as for takes 0-3)",
        "origin": "holosoma-retargeting 0.1.0 wheel (PyPI), demo_data/climb/mocap_climb_seq_4",
        "licence": "Apache-2.0",
    },
}

CAMERA_SETS = ("fixed", "real")
NOISE = ("clean", "detector")
REAL_CAMERAS = 8
REAL_CAMERA_SEED = 0
NOISE_SEED = 0


# ----------------------------------------------------------------------------- fetching
def _pip_download(requirement: str, dest: str, sdist: bool) -> str:
    os.makedirs(dest, exist_ok=True)
    stem = requirement.split("==")[0].replace("-", "_")
    pattern = os.path.join(dest, f"{stem}-*.tar.gz" if sdist else f"{stem}-*.whl")
    found = glob.glob(pattern)
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", requirement, "-d", dest]
        if sdist:
            cmd += ["--no-binary", ":all:"]
        subprocess.run(cmd, check=True)
        found = glob.glob(pattern)
    if not found:
        raise ValueError(f"pip download {requirement} left nothing matching {pattern}")
    return sorted(found)[-1]


def _apt_download(spec: str, dest: str) -> str:
    os.makedirs(dest, exist_ok=True)
    name = spec.split("=")[0]
    found = glob.glob(os.path.join(dest, f"{name}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", spec], check=True, cwd=dest)
        found = glob.glob(os.path.join(dest, f"{name}_*.deb"))
    if not found:
        raise ValueError(f"apt-get download {spec} left no .deb in {dest}")
    return sorted(found)[-1]


def _extract(archive: str, member: str, out: str) -> str:
    """``member`` of a wheel / sdist / .deb archive -> ``out``."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    elif archive.endswith(".tar.gz"):
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                raise ValueError(f"{archive}: {member} is not a file")
            with open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    elif archive.endswith(".deb"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", archive, tmp], check=True)
            shutil.copyfile(os.path.join(tmp, member), out)
    else:
        raise ValueError(f"unknown archive type: {archive}")
    return out


def fetch_source(name: str, cache_dir: str = CACHE_DIR) -> Dict[str, str]:
    """Fetch source ``name`` into ``cache_dir`` (cached): ``{"file": ..., "archive": ...}`` (+ ``"names"``)."""
    spec = SOURCES[name]
    kind, req = spec["fetch"]
    dl = os.path.join(cache_dir, "downloads")
    archive = _apt_download(req, dl) if kind == "deb" else _pip_download(req, dl, sdist=kind == "sdist")
    out = {"archive": archive}
    for key, member in (("file", spec["member"]), ("names", spec.get("names_member"))):
        if member is None:
            continue
        dest = os.path.join(cache_dir, name, os.path.basename(member))
        out[key] = dest if os.path.isfile(dest) else _extract(archive, member, dest)
    return out


def holosoma_joint_names(data_type_py: str) -> List[str]:
    """The 53 climbing-capture joint names: ``MOCAP_DEMO_JOINTS`` of holosoma-retargeting's
    ``config_types/data_type.py``, read with ``ast`` (nothing of the file is run)."""
    tree = ast.parse(open(data_type_py, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MOCAP_DEMO_JOINTS" for t in node.targets):
            names = ast.literal_eval(node.value)
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return names
    raise ValueError(f"{data_type_py}: no MOCAP_DEMO_JOINTS list")


# ----------------------------------------------------------------------------- conversion
def convert_source(name: str, path: str, names: Optional[Sequence[str]] = None, fps: float = FPS) -> np.ndarray:
    """The source's file -> (T, 17, 3) float32 H36M-17 world positions (metres, Z up) at ``fps``."""
    spec = SOURCES[name]
    if spec["format"] == "bvh":
        import warnings

        with warnings.catch_warnings():  # Boxing_Toes.bvh has one motion line more than it declares
            warnings.filterwarnings("ignore", message=".*beyond the declared.*")
            pose, _ = load_bvh_h36m17(path, joint_map=spec["joint_map"], scale=spec["scale"], up_axis="y",
                                      target_fps=fps)
        return pose
    if spec["format"] == "climb_npy":
        if names is None:
            raise ValueError(f"{name}: the climbing .npy needs its joint names")
        pose, _ = load_climb_npy(path, joint_names=list(names), source_fps=120.0, target_fps=fps)
        return pose
    raise ValueError(f"unknown format {spec['format']!r}")


def motion_checks(pose: np.ndarray) -> Dict:
    """Sanity numbers of a converted (T, 17, 3) motion: median bone lengths (m), median height of
    head top / pelvis / ankles above the lowest ankle (Z up), and the share of frames where the head
    top is above the pelvis (upright)."""
    pose = np.asarray(pose, dtype=np.float64)
    j = {n: i for i, n in enumerate(H36M_17.joint_names)}
    bones = {}
    for child, parent in enumerate(H36M_17.parents):
        if parent >= 0:
            bones[f"{H36M_17.joint_names[parent]}-{H36M_17.joint_names[child]}"] = float(
                np.median(np.linalg.norm(pose[:, child] - pose[:, parent], axis=-1)))
    floor = np.minimum(pose[:, j["left_ankle"], 2], pose[:, j["right_ankle"], 2])
    return {
        "frames": int(len(pose)), "seconds": round(len(pose) / FPS, 2), "bone_lengths_m": bones,
        "head_top_height_m": float(np.median(pose[:, j["head_top"], 2] - floor)),
        "pelvis_height_m": float(np.median(pose[:, j["pelvis"], 2] - floor)),
        "upright_fraction": float(np.mean(pose[:, j["head_top"], 2] > pose[:, j["pelvis"], 2])),
        "finite": bool(np.isfinite(pose).all()),
    }


def load_motions(names: Sequence[str], cache_dir: str = CACHE_DIR, files: Optional[Dict[str, str]] = None
                 ) -> Tuple[Dict[str, np.ndarray], Dict[str, Dict]]:
    """Fetch (unless ``files`` gives the path) and convert each source: ``({name: (T,17,3)}, {name: provenance})``."""
    files = dict(files or {})
    motions, info = {}, {}
    for name in names:
        spec = SOURCES[name]
        given = files.get(name)
        got = {"file": given} if given else fetch_source(name, cache_dir)
        joint_names = None
        if spec["format"] == "climb_npy":
            joint_names = holosoma_joint_names(got["names"]) if "names" in got else None
            if joint_names is None:  # a given .npy: its joint_names.json next to it (load_climb_npy's default)
                import json

                joint_names = json.load(open(os.path.join(os.path.dirname(given), "joint_names.json")))
        pose = convert_source(name, got["file"], joint_names)
        motions[name] = pose
        info[name] = {"what": spec["what"], "origin": spec["origin"], "licence": spec["licence"],
                      "fetch": " ".join(spec["fetch"]), "file": got["file"], **motion_checks(pose)}
    return motions, info


# ----------------------------------------------------------------------------- cameras, windows
def camera_set(name: str, n_real: int = REAL_CAMERAS, seed: int = REAL_CAMERA_SEED):
    """``fixed``: the demo's four validation cameras; ``real``: ``n_real`` cameras drawn once from the
    ``data.augment: real`` preset's sampler (its arrays turned into :class:`VirtualCamera`)."""
    from modeling_mpm.cameras import VirtualCamera
    from modeling_mpm.data import DEMO_VALIDATION_CAMERAS
    from modeling_mpm.data.augment import augment_from_config

    if name == "fixed":
        return list(DEMO_VALIDATION_CAMERAS)
    if name != "real":
        raise ValueError(f"camera set must be one of {CAMERA_SETS}, got {name!r}")
    sampler = augment_from_config("real")[1]
    a = sampler.sample_arrays(np.random.default_rng(seed), n_real)
    # orbit_rotations: the third row (forward) is -(cos e cos y, cos e sin y, sin e)
    direction = -a["rotation"][:, 2]
    out = []
    for i in range(n_real):
        d = direction[i]
        out.append(VirtualCamera(yaw=float(math.atan2(d[1], d[0])), elevation=float(math.asin(np.clip(d[2], -1, 1))),
                                 distance=float(a["translation"][i, 2]), focal=float(a["focal"][i]),
                                 width=int(a["width"][i]), height=int(round(a["height"][i])),
                                 offset=(float(a["translation"][i, 0]), float(a["translation"][i, 1]))))
    return out


def detector_noise():
    """The ``real`` preset's 2D detector noise without dropped joints / frames (no confidence is fed)."""
    from modeling_mpm.data.augment import AUGMENT_PRESETS, DetectorNoise2D

    kw = dict(AUGMENT_PRESETS["real"]["noise_2d"], drop_prob=0.0, frame_drop_prob=0.0)
    return DetectorNoise2D(**kw)


class _Windows:
    """A fixed set of evaluation windows (what ``evaluate_lifting`` reads: pose_2d, pose_3d, action)."""

    def __init__(self, arrays: Dict[str, np.ndarray], labels: Sequence[str]):
        import torch

        self.p2 = torch.from_numpy(arrays["pose_2d"])
        self.p3 = torch.from_numpy(arrays["pose_3d"])
        self.seq = arrays["sequence_index"]
        self.cam = arrays["camera_index"]
        self.labels = list(labels)

    def __len__(self):
        return len(self.p2)

    def __getitem__(self, i):
        return {"pose_2d": self.p2[i], "pose_3d": self.p3[i], "action": self.labels[int(self.seq[i])]}


def build_windows(motions: Dict[str, np.ndarray], cameras, num_frames: int, stride: int,
                  noise: bool, seed: int = NOISE_SEED) -> _Windows:
    """Every sequence through every camera, a window centred every ``stride`` frames."""
    from modeling_mpm.data import PoseWindowDataset

    names = list(motions)
    seqs = [{"pose_3d": motions[n], "coordinate_frame": "world"} for n in names]
    ds = PoseWindowDataset(seqs, num_frames=num_frames, stride=stride, virtual_cameras=list(cameras),
                           noise_2d=detector_noise() if noise else None, seed=seed)
    return _Windows(ds.get_batch(np.arange(len(ds))), names)


def mean_pose_scores(w: _Windows) -> Dict[str, Dict[str, float]]:
    """Per-sequence, per-camera mean root-relative centre pose predicted for every window."""
    from modeling_mpm.metrics import mpjpe_per_frame, p_mpjpe_per_frame

    y = w.p3[:, w.p3.shape[1] // 2].numpy().astype(np.float64)
    pred = np.empty_like(y)
    groups = w.seq * 1000 + w.cam
    for g in np.unique(groups):
        pred[groups == g] = y[groups == g].mean(axis=0)
    e1 = mpjpe_per_frame(pred, y) * 1000.0
    e2 = p_mpjpe_per_frame(pred, y) * 1000.0
    out = {}
    for si, name in enumerate(w.labels):
        sel = w.seq == si
        out[name] = {"mpjpe_mm": float(e1[sel].mean()), "p_mpjpe_mm": float(e2[sel].mean()), "windows": int(sel.sum())}
    return out


def _lifter_scores(model, w: _Windows, flip: bool, batch_size: int) -> Dict[str, Dict[str, float]]:
    from modeling_mpm.evaluation import evaluate_lifting

    r = evaluate_lifting(model, w, batch_size=batch_size, flip=flip)
    return {name: {"mpjpe_mm": float(v["mpjpe"]), "p_mpjpe_mm": float(v["p_mpjpe"]), "windows": int(v["windows"])}
            for name, v in r["per_action"].items()}


def _matched_scores(model, w: _Windows, cameras, flip: bool, batch_size: int) -> Dict[str, Dict[str, float]]:
    """The lifter's centre-frame 3D moved onto the window's centre-frame 2D (``match_2d`` of the pipelines and
    ``lift_video``: :func:`modeling_mpm.reprojection.match_keypoints_2d`, default focal length = the frame's long
    side, not the camera's), after giving each bone its median length over the sequence's windows in that camera
    (``lift_video``'s ``constant_bones``), scored like :func:`_lifter_scores`."""
    import torch

    from modeling_mpm.evaluation import predict_lifting
    from modeling_mpm.keypoints import unnormalize_screen_coordinates
    from modeling_mpm.metrics import mpjpe_per_frame, p_mpjpe_per_frame
    from modeling_mpm.reprojection import match_keypoints_2d
    from modeling_mpm.skeleton import constant_bone_lengths, get_skeleton

    c = w.p2.shape[1] // 2
    with torch.no_grad():
        pred = torch.cat([predict_lifting(model, w.p2[i:i + batch_size], flip=flip)[:, 0].float()
                          for i in range(0, len(w), batch_size)]).numpy().astype(np.float64)
    pred -= pred[:, :1]
    parents = get_skeleton(model.config.skeleton).parents
    for k, cam in enumerate(cameras):
        for si in np.unique(w.seq):
            sel = (w.cam == k) & (w.seq == si)
            kp = unnormalize_screen_coordinates(w.p2[sel][:, c].numpy().astype(np.float64), cam.width, cam.height)
            pred[sel] = match_keypoints_2d(constant_bone_lengths(pred[sel], parents), kp, (cam.width, cam.height))
    y = w.p3[:, c].numpy().astype(np.float64)
    y -= y[:, :1]
    e1, e2 = mpjpe_per_frame(pred, y) * 1000.0, p_mpjpe_per_frame(pred, y) * 1000.0
    return {name: {"mpjpe_mm": float(e1[w.seq == si].mean()), "p_mpjpe_mm": float(e2[w.seq == si].mean()),
                   "windows": int((w.seq == si).sum())} for si, name in enumerate(w.labels)}


def _with_mean(per_source: Dict[str, Dict[str, float]]) -> Dict:
    out = dict(per_source)
    out["mean"] = {k: float(np.mean([v[k] for v in per_source.values()])) for k in ("mpjpe_mm", "p_mpjpe_mm")}
    return out


def evaluate_heldout(lifters: Dict[str, object], motions: Dict[str, np.ndarray], stride: int = 4,
                     flip: bool = True, batch_size: int = 256, camera_sets: Sequence[str] = CAMERA_SETS,
                     noises: Sequence[str] = NOISE, match_2d: bool = True) -> Dict:
    """Score ``{label: folder or loaded MPMForPoseLifting}`` on ``{source: (T,17,3) world motion}``.

    Returns ``{"results": {camera_set: {noise: {method: {source: {"mpjpe_mm", "p_mpjpe_mm", "windows"},
    "mean": {...}}}}}, "cameras": {...}, ...}``; methods: each label, ``<label>+match_2d`` (``match_2d``: its 3D
    moved onto its 2D, as ``lift_video`` does) and ``mean_pose``."""
    from modeling_mpm import MPMForPoseLifting

    models = {k: (MPMForPoseLifting.from_pretrained(v) if isinstance(v, (str, os.PathLike)) else v).eval()
              for k, v in lifters.items()}
    cams = {c: camera_set(c) for c in camera_sets}
    results: Dict = {}
    for cset in camera_sets:
        for nz in noises:
            cache: Dict[int, _Windows] = {}
            res = {}
            for label, model in models.items():
                F = int(model.config.num_frames)
                if F not in cache:
                    cache[F] = build_windows(motions, cams[cset], F, stride, noise=nz == "detector")
                res[label] = _with_mean(_lifter_scores(model, cache[F], flip, batch_size))
                if match_2d:
                    res[label + "+match_2d"] = _with_mean(_matched_scores(model, cache[F], cams[cset], flip, batch_size))
            w = next(iter(cache.values())) if cache else build_windows(motions, cams[cset], 27, stride,
                                                                        noise=nz == "detector")
            res["mean_pose"] = _with_mean(mean_pose_scores(w))
            results.setdefault(cset, {})[nz] = res
    return {
        "results": results,
        "cameras": {c: [{"yaw_deg": round(math.degrees(v.yaw), 1), "elevation_deg": round(math.degrees(v.elevation), 1),
                         "distance_m": round(v.distance, 2), "focal_px": round(v.focal, 1),
                         "frame": [v.width, v.height], "offset_m": [round(o, 3) for o in v.offset]}
                        for v in cams[c]] for c in camera_sets},
        "stride": stride, "flip": flip, "match_2d": match_2d, "fps": FPS,
        "noise_2d": dataclasses.asdict(detector_noise()) if "detector" in noises else None,
        "protocol": "centre frame of each window, root-relative camera-frame joints, MPJPE and per-frame "
                    "Procrustes P-MPJPE in mm (modeling_mpm.evaluation.evaluate_lifting), per source = mean "
                    "over its windows; mean = unweighted mean over sources",
    }


# ----------------------------------------------------------------------------- report
def format_table(result: Dict) -> str:
    return "\n".join(_tables(result))


def _tables(result: Dict) -> List[str]:
    L = []
    res = result["results"]
    sources = [s for s in next(iter(next(iter(res.values())).values()))["mean_pose"] if s != "mean"]
    for cset, by_noise in res.items():
        for nz, by_method in by_noise.items():
            L += [f"Cameras `{cset}`, {nz} 2D: MPJPE / P-MPJPE (mm)", "",
                  "| method | " + " | ".join(f"`{s}`" for s in sources) + " | mean |",
                  "|" + "---|" * (len(sources) + 2)]
            for meth, per in by_method.items():
                L.append(f"| {_method_name(meth)} | " + " | ".join(
                    f"{per[s]['mpjpe_mm']:.1f} / {per[s]['p_mpjpe_mm']:.1f}" for s in sources + ["mean"]) + " |")
            L.append("")
    return L


def _method_name(m: str) -> str:
    if m.endswith("+match_2d"):
        return f"`{m[:-len('+match_2d')]}`, constant bone lengths, 3D moved onto its 2D (`match_2d`, as `lift_video`)"
    return "per-sequence mean pose (input-blind)" if m == "mean_pose" else f"`{m}`"


def report_section(result: Dict, number: int = 12) -> List[str]:
    """The bench/RESULTS.md section (Markdown lines) for a ``heldout_mocap.json`` result."""
    m = result.get("meta", {})
    L = [f"## {number}. Generalisation: held-out motion capture through virtual cameras", "",
         f"Command: `{m.get('command', 'n/a')}` (commit {m.get('git_commit', 'n/a')}, {m.get('started_utc', 'n/a')}, "
         f"torch {m.get('torch', 'n/a')}, {m.get('threads', 'n/a')} thread(s), load average before "
         f"{m.get('load_before', 'n/a')}, after {m.get('load_after', 'n/a')}, {m.get('wall_s', 0):.0f} s wall-clock). "
         "Lifters: " + (", ".join(f"`{k}` = `{v}`" for k, v in (m.get("lifters") or {}).items()) or "none") + "." + C.updated_rows_note(m), "",
         "Motion that no training run uses (issue 22: only the repository's motion plus augmentation is trained "
         "on), fetched by the bench command and converted with the package's readers to H36M-17 world positions "
         "(metres, Z up, 50 Hz; DATA_NOTES.md has the licences):", ""]
    for name, s in result.get("sources", {}).items():
        L.append(f"- `{name}`: {s['what']}; {s['origin']} ({s['licence']}); {s['frames']} frames at 50 Hz, "
                 f"head top {s['head_top_height_m']:.2f} m / pelvis {s['pelvis_height_m']:.2f} m above the feet "
                 f"(median).")
    cams = result.get("cameras", {})
    L += ["", f"Cameras: `fixed` = the demo's {len(cams.get('fixed', []))} validation cameras (5 m, 10 degrees up, "
          f"1150 px on 1000 x 1000); `real` = {len(cams.get('real', []))} cameras drawn once (seed "
          f"{REAL_CAMERA_SEED}) from the `data.augment: real` preset's sampler (2-8 m, -15..60 degrees, focal "
          "0.7-2.2 frame widths, landscape / square / portrait frames; no roll). 2D: clean projections, or with "
          "the `real` preset's detector noise (`DetectorNoise2D`, relative to the person's size: jitter, per-joint "
          "offsets, outliers, left/right swaps; no dropped joints; seed 0). A window centred every "
          f"{result.get('stride')} frames, scored on its centre frame by `evaluate_lifting` (root-relative MPJPE "
          f"/ per-frame Procrustes P-MPJPE, mm; flip test-time augmentation: {result.get('flip')}); every method "
          "sees identical windows. The mean pose is the per-sequence, per-camera mean root-relative pose "
          "(input-blind; it even knows each test sequence's mean pose; its error is the same for every camera, a "
          "rotation of the world, and for clean or noisy 2D).", ""]
    L += _tables(result)
    return L


def _parse_kv(spec: str) -> Tuple[str, str]:
    if "=" not in spec:
        label, path = os.path.basename(os.path.normpath(spec)), spec
    else:
        label, path = spec.split("=", 1)
    if not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {spec!r}")
    return label, path


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", type=_parse_kv, default=[], metavar="LABEL=FOLDER",
                    help="a pose-lifting folder to score (repeatable); the shipped general lifter is always scored")
    ap.add_argument("--no-general", action="store_true", help="do not score the shipped mpm-lift-general")
    ap.add_argument("--sources", default=",".join(SOURCES), help="comma-separated sources")
    ap.add_argument("--source-file", action="append", type=_parse_kv, default=[], metavar="NAME=PATH",
                    help="use this file for a source instead of fetching it")
    ap.add_argument("--cache-dir", default=CACHE_DIR)
    ap.add_argument("--stride", type=int, default=4, help="a window centred every STRIDE frames (50 Hz)")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--no-match-2d", action="store_true", help="do not also score the 3D moved onto its 2D")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=RESULTS_JSON)
    C.add_merge_arguments(ap)
    args = ap.parse_args(argv)
    C.check_merge_arguments(ap, args)
    import torch

    torch.set_num_threads(args.threads)
    meta = C.run_meta("heldout_mocap", args.threads, argv, script=os.path.abspath(__file__))
    t0 = time.time()
    names = [s for s in args.sources.split(",") if s]
    unknown = [s for s in names + [k for k, _ in args.source_file] if s not in SOURCES]
    if unknown:
        raise SystemExit(f"unknown source(s) {unknown}; known: {list(SOURCES)}")
    motions, info = load_motions(names, args.cache_dir, dict(args.source_file))
    lifters = {} if args.no_general else {"mpm-lift-general": GENERAL_LIFTER}
    for label, path in args.model:
        if label in lifters:
            raise SystemExit(f"--model label {label!r} used twice")
        lifters[label] = path
    result = evaluate_heldout(lifters, motions, stride=args.stride, flip=not args.no_flip, batch_size=args.batch_size,
                              match_2d=not args.no_match_2d)
    result["sources"] = info
    result["meta"] = dict(meta, wall_s=round(time.time() - t0, 1), load_after=C.load_average(),
                          lifters={k: os.path.relpath(v, C.ROOT) if v.startswith(C.ROOT) else v
                                   for k, v in lifters.items()})
    print(format_table(result))
    C.write_json(result, args.out)
    print(f"[heldout-mocap] wrote {args.out}")
    C.merge_if_asked(args, result, list(lifters), tag="heldout-mocap",
                     same=("stride", "flip", "match_2d", "cameras", "noise_2d", "protocol", "sources"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
