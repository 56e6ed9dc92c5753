"""Converters from the released pose-data layouts to rows of the sequence format (:mod:`modeling_mpm.data.io`):
Human3.6M (VideoPose3D layout), MPI-INF-3DHP (P-STMO layout), AMASS (the MPM authors' schema or plain joint npz
files) and motion capture (BVH, climbing .npy). Each ``prepare_*`` returns a ``datasets.DatasetDict``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from ..cameras import Camera, h36m_cameras, world_to_camera, project_to_pixels
from ..skeleton import h36m17_to_h36m16, mpi3dhp17_to_h36m16, mpi3dhp17_to_h36m17
from .io import make_row, read_npz_object, rows_to_dataset
from .mocap import (CMU_BVH_SCALE, CMU_BVH_TO_H36M17, SMPL_TO_H36M17, JointMap, load_bvh_h36m17,
                    load_climb_npy, map_joints_by_name, to_z_up_at_rate)

__all__ = ["H36M_32_TO_17", "H36M_TRAIN_SUBJECTS", "H36M_TEST_SUBJECTS", "load_npz_object", "load_h36m_2d",
           "h36m_rows", "prepare_h36m", "MPI3DHP_TEST_IMAGE_SIZE", "MPI3DHP_TEST_FPS", "mpi3dhp_train_rows",
           "mpi3dhp_test_rows", "prepare_mpi3dhp", "amass_authors_rows", "amass_joints_rows", "prepare_amass",
           "mocap_rows", "prepare_mocap"]

H36M_32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
"""Indices of the 17 VideoPose3D joints in the 32-joint Human3.6M mocap skeleton."""
H36M_TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
H36M_TEST_SUBJECTS = ("S9", "S11")


def load_npz_object(path, key: str):
    """:func:`modeling_mpm.data.io.read_npz_object`, but ``FileNotFoundError`` for a missing file."""
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    return read_npz_object(path, key)


def _select_joints(pose: np.ndarray, num_joints: int) -> np.ndarray:
    if num_joints == 17:
        return pose
    if num_joints == 16:
        return h36m17_to_h36m16(pose)
    raise ValueError(f"num_joints must be 17 or 16, got {num_joints}")


def _numeric(value, where: str, what: str) -> np.ndarray:
    """``value`` as a float64 array, or a ValueError saying where the input is not numeric."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: {what} is not a numeric array (got {type(value).__name__})") from None


def _mapping(value, where: str, layout: str, keys: Sequence[str] = ()) -> dict:
    """``value``: a dict holding ``keys``, or a ValueError naming ``where``."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected {layout}, got {type(value).__name__}")
    missing = set(keys) - set(value)
    if missing:
        raise ValueError(f"{where}: missing {sorted(missing)}")
    return value


def _number(value, where: str, what: str) -> float:
    try:
        v = float(np.asarray(value).reshape(-1)[0]) if not isinstance(value, (int, float)) else float(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise ValueError(f"{where}: {what} must be a number, got {value!r:.60}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{where}: {what} must be a finite number > 0, got {v}")
    return v


def load_h36m_2d(path) -> dict:
    """``positions_2d`` dict of a VideoPose3D 2D file; checks ``metadata`` (17 joints) if present."""
    positions_2d = load_npz_object(path, "positions_2d")
    try:
        meta = load_npz_object(path, "metadata")
    except ValueError:
        meta = None
    if isinstance(meta, dict) and meta.get("num_joints", 17) != 17:
        raise ValueError(f"{path}: metadata says {meta.get('num_joints')} joints; expected 17 (h36m layout)")
    if not isinstance(positions_2d, dict):
        raise ValueError(f"{path}: positions_2d must be a pickled dict[subject][action] -> list of 4 arrays")
    return positions_2d


def _h36m_inputs(positions_3d, positions_2d):
    """The 3D and 2D dicts of :func:`h36m_rows` (paths are loaded)."""
    if isinstance(positions_3d, (str, os.PathLike)):
        positions_3d = load_npz_object(positions_3d, "positions_3d")
    if not isinstance(positions_3d, dict):
        raise TypeError("positions_3d must be a dict[subject][action] -> (T, 32, 3) array")
    if isinstance(positions_2d, (str, os.PathLike)):
        positions_2d = load_h36m_2d(positions_2d)
    if positions_2d is not None and not isinstance(positions_2d, dict):
        raise TypeError("positions_2d must be a dict[subject][action] -> list of 4 (T, 17, 2) arrays")
    return positions_3d, positions_2d


def _h36m_views_2d(positions_2d: dict, subject: str, action: str, n_cams: int):
    """The checked per-camera 2D arrays of one Human3.6M sequence (see :func:`h36m_rows`)."""
    if subject not in positions_2d or action not in _mapping(
            positions_2d[subject], f"2D subject {subject!r}", "a dict[action] -> list of 4 arrays"):
        raise ValueError(f"2D file has no {subject}/{action}")
    views2d = positions_2d[subject][action]
    if not isinstance(views2d, (list, tuple)) and not (isinstance(views2d, np.ndarray) and views2d.ndim):
        raise ValueError(f"{subject}/{action}: the 2D must be a list of {n_cams} per-camera arrays")
    if len(views2d) != n_cams:
        raise ValueError(f"{subject}/{action}: {len(views2d)} 2D views for {n_cams} cameras")
    return views2d


def h36m_rows(positions_3d: Union[str, os.PathLike, dict], positions_2d: Union[str, os.PathLike, dict, None] = None,
              subjects: Optional[Sequence[str]] = None, num_joints: int = 17,
              cameras: Optional[Dict[str, List[Camera]]] = None, skip_corrupted: bool = True,
              project_missing_2d: bool = True) -> Iterator[dict]:
    """Rows for every (subject, action, camera) of Human3.6M in the VideoPose3D layout.

    Args:
        positions_3d: ``data_3d_h36m.npz`` (key ``positions_3d``: dict[subject][action] =
            (T, 32, 3) world metres; (T, 17, 3) also accepted) or that dict.
        positions_2d: a 2D file (``data_2d_h36m_gt.npz`` / ``..._cpn_ft_h36m_dbb.npz``, key
            ``positions_2d``: dict[subject][action] = list of 4 (T2, 17, 2) pixel arrays, one per camera) or that
            dict; truncated to the mocap length. None: the 3D projected (with distortion) if ``project_missing_2d``.
        subjects: subjects to convert (default: all in the file).
        num_joints: 17 (VideoPose3D order) or 16 (neck/nose dropped).
        cameras: subject -> 4 cameras (default: :func:`modeling_mpm.cameras.h36m_cameras`).
        skip_corrupted: skip S11 "Directions" (its video is corrupted; VideoPose3D drops it).

    Each row: 3D camera frame (metres, absolute), 2D pixels, image size, pixel intrinsics, fps 50, sequence id
    ``"<subject>/<action>/<camera id>"``.
    """
    positions_3d, positions_2d = _h36m_inputs(positions_3d, positions_2d)
    subjects = list(positions_3d) if subjects is None else list(subjects)
    for subject in subjects:
        if subject not in positions_3d:
            raise ValueError(f"subject {subject!r} not in the 3D file (subjects: {sorted(positions_3d)})")
        if cameras is not None:
            if subject not in cameras:
                raise ValueError(f"no cameras given for subject {subject!r}")
            cams = cameras[subject]
        else:
            cams = h36m_cameras(subject)  # raises ValueError for unknown subjects
        actions = _mapping(positions_3d[subject], f"3D subject {subject!r}", "a dict[action] -> (T, 32, 3) array")
        for action in sorted(actions, key=str):
            if skip_corrupted and subject == "S11" and action == "Directions":
                continue
            pos = _numeric(actions[action], f"{subject}/{action}", "the 3D")
            if pos.ndim != 3 or pos.shape[-1] != 3 or pos.shape[1] not in (32, 17):
                raise ValueError(f"{subject}/{action}: 3D must be (T, 32, 3) or (T, 17, 3), got {pos.shape}")
            if pos.shape[1] == 32:
                pos = pos[:, H36M_32_TO_17]
            T = pos.shape[0]
            views2d = None if positions_2d is None else _h36m_views_2d(positions_2d, subject, action, len(cams))
            for ci, cam in enumerate(cams):
                p3 = world_to_camera(pos, cam.orientation, cam.translation)
                if views2d is not None:
                    p2 = _numeric(views2d[ci], f"{subject}/{action} camera {ci}", "the 2D")
                    if p2.ndim != 3 or p2.shape[1:] != (17, 2):
                        raise ValueError(f"{subject}/{action} camera {ci}: 2D must be (T, 17, 2), got {p2.shape}")
                    if p2.shape[0] < T:
                        raise ValueError(f"{subject}/{action} camera {ci}: 2D has {p2.shape[0]} frames, "
                                         f"fewer than the {T} mocap frames")
                    p2 = p2[:T]
                elif project_missing_2d:
                    p2 = project_to_pixels(p3, cam.intrinsics)
                else:
                    p2 = None
                yield make_row(sequence=f"{subject}/{action}/{cam.id}", source="h36m", subject=subject, action=action,
                               camera=cam.id, pose_3d=_select_joints(p3, num_joints),
                               pose_2d=None if p2 is None else _select_joints(p2, num_joints), pose_2d_units="pixels",
                               fps=50.0, skeleton=f"h36m{num_joints}", coordinate_frame="camera",
                               image_size=cam.image_size, intrinsics=cam.intrinsics)


def prepare_h36m(positions_3d, positions_2d=None, num_joints: int = 17,
                 train_subjects: Sequence[str] = H36M_TRAIN_SUBJECTS,
                 test_subjects: Sequence[str] = H36M_TEST_SUBJECTS, cameras=None):
    """DatasetDict ``{"train": S1,S5,S6,S7,S8, "test": S9,S11}`` of :func:`h36m_rows`; a split whose subjects are
    all absent from the file is left out; a file with none of the subjects raises ``ValueError``."""
    from datasets import DatasetDict

    positions_3d, positions_2d = _h36m_inputs(positions_3d, positions_2d)
    known = set(train_subjects) | set(test_subjects)
    if not known & set(positions_3d):
        raise ValueError(f"the 3D file has none of the Human3.6M subjects {sorted(known)} "
                         f"(it has {sorted(map(str, positions_3d))}); nothing to convert")
    out = {}
    for split, subjects in (("train", train_subjects), ("test", test_subjects)):
        subjects = [s for s in subjects if s in positions_3d]
        if not subjects:  # e.g. a file without S9/S11: no empty (unloadable) split
            continue
        out[split] = rows_to_dataset(h36m_rows(positions_3d, positions_2d, subjects, num_joints, cameras), num_joints)
    empty = [k for k, v in out.items() if len(v) == 0]
    if empty:
        raise ValueError(f"no sequences for split(s) {empty}: the subjects present have no actions")
    return DatasetDict(out)


MPI3DHP_TEST_IMAGE_SIZE = {"TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048), "TS4": (2048, 2048),
                           "TS5": (1920, 1080), "TS6": (1920, 1080)}
MPI3DHP_TEST_FPS = {"TS1": 50.0, "TS2": 50.0, "TS3": 50.0, "TS4": 50.0, "TS5": 25.0, "TS6": 25.0}
"""Frame rates of the 3DHP test sequences (studio 50 Hz, outdoor 25 Hz; not in the npz, override with ``fps=``)."""


def _mpi_convert(d2: np.ndarray, d3: np.ndarray, w: int, h: int, num_joints: int, legacy: bool, where: str):
    d2 = _numeric(d2, where, "data_2d")
    d3 = _numeric(d3, where, "data_3d")
    if d2.ndim != 3 or d2.shape[1:] != (17, 2):
        raise ValueError(f"{where}: data_2d must be (T, 17, 2), got {d2.shape}")
    if d3.ndim != 3 or d3.shape[1:] != (17, 3):
        raise ValueError(f"{where}: data_3d must be (T, 17, 3), got {d3.shape}")
    if len(d2) != len(d3):
        raise ValueError(f"{where}: data_2d has {len(d2)} frames, data_3d {len(d3)}")
    p3 = d3 / 1000.0  # univ_annot3 millimetres -> metres (camera frame)
    if legacy:
        if num_joints != 16:
            raise ValueError("legacy=True reproduces the authors' 16-joint 3DHP data; use num_joints=16")
        # the authors' pipeline: head mixing + reorder, and normalised 2D divided by 1000
        p2 = (d2 / w * 2 - np.array([1.0, h / w])) / 1000.0
        return mpi3dhp17_to_h36m16(p2, legacy=True), mpi3dhp17_to_h36m16(p3, legacy=True), "normalized"
    if num_joints == 17:
        return mpi3dhp17_to_h36m17(d2), mpi3dhp17_to_h36m17(p3), "pixels"
    if num_joints == 16:
        return mpi3dhp17_to_h36m16(d2), mpi3dhp17_to_h36m16(p3), "pixels"
    raise ValueError(f"num_joints must be 17 or 16, got {num_joints}")


def mpi3dhp_train_rows(path_or_dict, num_joints: int = 17, legacy: bool = False, image_size=(2048, 2048)
                       ) -> Iterator[dict]:
    """Rows from the P-STMO ``data_train_3dhp.npz`` (``['data'].item()`` -> dict["S1 Seq1"] = [dict_cam, fps],
    dict_cam["<cam>"] = {"data_2d" (T,17,2) px, "data_3d" (T,17,3) mm}), mapped to H36M-17 / 16
    (:func:`modeling_mpm.skeleton.mpi3dhp17_to_h36m17`). ``legacy=True`` (16 joints only) reproduces the authors'
    head/neck mapping and their 2D division by 1000 (2D then stored normalised)."""
    data = load_npz_object(path_or_dict, "data") if isinstance(path_or_dict, (str, os.PathLike)) else path_or_dict
    if not isinstance(data, dict):
        raise TypeError("3DHP train data must be a dict['S<i> Seq<j>'] -> [dict_cam, fps]")
    w, h = image_size
    for key in sorted(data, key=str):
        entry = data[key]
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[0], dict):
            raise ValueError(f"3DHP train entry {key!r} must be [dict_cam, fps]")
        cams, fps = entry
        fps = _number(fps, f"3DHP train entry {key!r}", "fps")
        parts = str(key).split()
        subject, seq = (parts[0], parts[1]) if len(parts) == 2 else (str(key), "")
        for cam in sorted(cams, key=lambda c: (0, int(c), "") if str(c).isdigit() else (1, 0, str(c))):
            d = _mapping(cams[cam], f"3DHP train {key} camera {cam}", "a dict with 'data_2d' and 'data_3d'",
                         ("data_2d", "data_3d"))
            p2, p3, units = _mpi_convert(d["data_2d"], d["data_3d"], w, h, num_joints, legacy, f"{key} camera {cam}")
            yield make_row(sequence=f"{key}/{cam}", source="mpi_inf_3dhp", subject=subject, action=seq,
                           camera=str(cam), pose_3d=p3, pose_2d=p2, pose_2d_units=units, fps=float(fps),
                           skeleton=f"h36m{num_joints}", coordinate_frame="camera", image_size=(w, h))


def mpi3dhp_test_rows(path_or_dict, num_joints: int = 17, legacy: bool = False,
                      fps: Optional[Dict[str, float]] = None) -> Iterator[dict]:
    """Rows from the P-STMO ``data_test_3dhp.npz`` (dict["TS1".."TS6"] = {"data_2d", "data_3d", "valid"}); image
    sizes 2048x2048 (TS1-4) / 1920x1080 (TS5-6); ``valid`` flags kept."""
    data = load_npz_object(path_or_dict, "data") if isinstance(path_or_dict, (str, os.PathLike)) else path_or_dict
    if not isinstance(data, dict):
        raise TypeError("3DHP test data must be a dict['TS<i>'] -> {'data_2d','data_3d','valid'}")
    rates = dict(MPI3DHP_TEST_FPS, **(fps or {}))
    for key in sorted(data, key=str):
        if key not in MPI3DHP_TEST_IMAGE_SIZE:
            raise ValueError(f"unknown 3DHP test sequence {key!r}; expected TS1..TS6")
        d = _mapping(data[key], f"3DHP test {key}", "a dict with 'data_2d', 'data_3d' and 'valid'",
                     ("data_2d", "data_3d", "valid"))
        w, h = MPI3DHP_TEST_IMAGE_SIZE[key]
        p2, p3, units = _mpi_convert(d["data_2d"], d["data_3d"], w, h, num_joints, legacy, f"test {key}")
        valid = np.asarray(d["valid"]).reshape(-1)
        if len(valid) != len(p3):
            raise ValueError(f"3DHP test {key}: {len(valid)} valid flags for {len(p3)} frames")
        yield make_row(sequence=key, source="mpi_inf_3dhp", subject=key, camera="", pose_3d=p3, pose_2d=p2,
                       pose_2d_units=units, fps=rates[key], skeleton=f"h36m{num_joints}",
                       coordinate_frame="camera", image_size=(w, h), valid=valid > 0)


def prepare_mpi3dhp(train_path=None, test_path=None, num_joints: int = 17, legacy: bool = False):
    """DatasetDict with "train" (S1-S8, all cameras) and/or "test" (TS1-TS6, ``valid`` kept)."""
    from datasets import DatasetDict

    if train_path is None and test_path is None:
        raise ValueError("give a 3DHP train file, a test file, or both")
    out = {}
    if train_path is not None:
        out["train"] = rows_to_dataset(mpi3dhp_train_rows(train_path, num_joints, legacy), num_joints)
    if test_path is not None:
        out["test"] = rows_to_dataset(mpi3dhp_test_rows(test_path, num_joints, legacy), num_joints)
    return DatasetDict(out)


def amass_authors_rows(path_or_dict, fps: float = 50.0) -> Iterator[dict]:
    """Rows from the MPM authors' ``amass.npz`` (``['poses'].item()`` -> dict[seq] = {"length", "pose2d" (T,16,2),
    "pose3d" (T,16,3)}), H36M-16: 2D stored as normalised screen coordinates, 3D as given (camera frame, metres
    assumed); ``fps`` unknown (assumed 50)."""
    data = load_npz_object(path_or_dict, "poses") if isinstance(path_or_dict, (str, os.PathLike)) else path_or_dict
    if not isinstance(data, dict):
        raise TypeError("AMASS data must be a dict[seq] -> {'length','pose2d','pose3d'}")
    for key in sorted(data, key=str):
        d = _mapping(data[key], f"AMASS sequence {key!r}", "a dict with 'length', 'pose2d' and 'pose3d'",
                     ("length", "pose2d", "pose3d"))
        p2 = _numeric(d["pose2d"], f"AMASS sequence {key!r}", "pose2d").astype(np.float32)
        p3 = _numeric(d["pose3d"], f"AMASS sequence {key!r}", "pose3d").astype(np.float32)
        if p2.ndim != 3 or p2.shape[1:] != (16, 2) or p3.ndim != 3 or p3.shape[1:] != (16, 3):
            raise ValueError(f"AMASS sequence {key!r}: pose2d must be (T,16,2) and pose3d (T,16,3), "
                             f"got {p2.shape} and {p3.shape}")
        try:
            T = int(np.asarray(d["length"]).reshape(-1)[0])
        except (TypeError, ValueError, IndexError, OverflowError):
            raise ValueError(f"AMASS sequence {key!r}: 'length' must be an integer, got {d['length']!r:.60}") from None
        if T != len(p3) or T != len(p2):
            raise ValueError(f"AMASS sequence {key!r}: length {T} but pose2d has {len(p2)} and pose3d {len(p3)} frames")
        yield make_row(sequence=str(key), source="amass", pose_3d=p3, pose_2d=p2, pose_2d_units="normalized",
                       fps=fps, skeleton="h36m16", coordinate_frame="camera")


def amass_joints_rows(paths: Union[str, os.PathLike, Sequence], joint_map: JointMap = SMPL_TO_H36M17,
                      up_axis: str = "z", target_fps: Optional[float] = 50.0) -> Iterator[dict]:
    """Rows (world frame, Z up, H36M-17) from plain joint-position npz files (a file, a folder searched
    recursively, or a list): ``joint_names`` (J,) strings, ``fps`` scalar, and (T, J, 3) float arrays in metres
    under ``positions`` (sequence named after the file) or other keys (sequence ``<file stem>/<key>``)."""
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.rglob("*.npz")) if p.is_dir() else [p]
    else:
        files = [Path(x) for x in paths]
    if not files:
        raise ValueError(f"no .npz files found in {paths}")
    from .io import read_npz

    for f in files:
        z = read_npz(f)  # plain arrays only, sizes checked; a ValueError naming the file otherwise
        for k in ("joint_names", "fps"):
            if k not in z:
                raise ValueError(f"{f}: missing key {k!r} (keys: {list(z)})")
        try:
            names = [str(n) for n in np.asarray(z["joint_names"]).reshape(-1)]
            fps = float(np.asarray(z["fps"]).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"{f}: 'joint_names' must be strings and 'fps' one number") from None
        if not fps > 0 or fps == float("inf"):
            raise ValueError(f"{f}: 'fps' must be a positive number, got {fps}")
        arrays = {k: z[k] for k in z if k not in ("joint_names", "fps")}
        if not arrays:
            raise ValueError(f"{f}: no position arrays besides joint_names and fps")
        for key, pos in sorted(arrays.items()):
            if pos.ndim != 3 or pos.shape[1:] != (len(names), 3):
                raise ValueError(f"{f}[{key!r}]: expected (T, {len(names)}, 3), got {pos.shape}")
            h36m, rate = to_z_up_at_rate(map_joints_by_name(pos, names, joint_map), fps, up_axis, target_fps)
            seq = f.stem if key == "positions" else f"{f.stem}/{key}"
            yield make_row(sequence=seq, source="amass", pose_3d=h36m, fps=rate, skeleton="h36m17",
                           coordinate_frame="world")


def prepare_amass(path, layout: str = "authors", **kwargs):
    """DatasetDict ``{"train": ...}`` of :func:`amass_authors_rows` (``layout="authors"``) or
    :func:`amass_joints_rows` (``"joints"``)."""
    from datasets import DatasetDict

    if layout == "authors":
        return DatasetDict({"train": rows_to_dataset(amass_authors_rows(path, **kwargs), 16)})
    if layout == "joints":
        return DatasetDict({"train": rows_to_dataset(amass_joints_rows(path, **kwargs), 17)})
    raise ValueError(f"layout must be 'authors' or 'joints', got {layout!r}")


def mocap_rows(paths: Sequence[Union[str, os.PathLike]], target_fps: float = 50.0, bvh_scale: float = CMU_BVH_SCALE,
               bvh_joint_map: JointMap = CMU_BVH_TO_H36M17, bvh_up_axis: str = "y", bvh_skip_frames: int = 0,
               npy_fps: float = 120.0) -> Iterator[dict]:
    """Rows (world frame, Z up, metres, H36M-17) from BVH files and climbing-style ``.npy`` files (with
    ``joint_names.json`` next to them); folders are searched for both."""
    files: List[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(p.rglob("*.bvh")) + sorted(p.rglob("*.npy"))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    if not files:
        raise ValueError(f"no .bvh or .npy files in {list(map(str, paths))}")
    for f in files:
        if f.suffix.lower() == ".bvh":
            pose, fps = load_bvh_h36m17(f, bvh_joint_map, bvh_scale, bvh_up_axis, target_fps, bvh_skip_frames)
            src = "bvh"
        elif f.suffix.lower() == ".npy":
            pose, fps = load_climb_npy(f, source_fps=npy_fps, target_fps=target_fps)
            src = "mocap_npy"
        else:
            raise ValueError(f"{f}: unsupported file type (expected .bvh or .npy)")
        yield make_row(sequence=f.stem, source=src, action=f.stem, pose_3d=pose, fps=fps, skeleton="h36m17",
                       coordinate_frame="world")


def prepare_mocap(paths, validation: Sequence[str] = (), **kwargs):
    """DatasetDict ``{"train", "validation"}``: sequences named (file stem) in ``validation`` go to "validation"."""
    from datasets import DatasetDict

    rows = list(mocap_rows(paths, **kwargs))
    unknown = set(validation) - {r["sequence"] for r in rows}
    if unknown:
        raise ValueError(f"validation sequences not found: {sorted(unknown)}")
    out = {"train": rows_to_dataset([r for r in rows if r["sequence"] not in validation], 17)}
    if validation:
        out["validation"] = rows_to_dataset([r for r in rows if r["sequence"] in validation], 17)
    return DatasetDict(out)
