"""Window datasets for ``data.source: demo | prepared`` on top of :mod:`modeling_mpm.data`.

``demo``: the embedded demo data (no test split: the test evaluation uses ``validation``).
``prepared``: ``mpm prepare`` folders or Hub dataset repo ids (``data.paths``), the named splits of
every folder concatenated. Training windows see world-frame motion through random virtual cameras
(``data.augment``, ``data.train_sequences``), validation and test windows through the fixed
:data:`modeling_mpm.data.DEMO_VALIDATION_CAMERAS`. Every item gets an ``action`` label (Human3.6M
action without take number, MPI-INF-3DHP subject, else the sequence name).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..skeleton import Skeleton, h36m17_to_h36m16

__all__ = ["load_window_splits", "LabelledWindows", "sequence_label", "dataset_rng_state",
           "restore_dataset_rng_state"]

_COLUMNS = ("pose_3d", "pose_2d", "intrinsics", "image_size", "valid", "fps", "sequence", "coordinate_frame",
            "pose_2d_units", "skeleton", "action", "source", "subject", "camera")


def sequence_label(seq: Dict) -> str:
    """The per-action table label of a sequence dict (see the module docstring)."""
    source = str(seq.get("source", ""))
    action = str(seq.get("action", "") or "")
    if source == "h36m" and action:
        return action.split(" ")[0]
    if source.startswith("mpi") and seq.get("subject"):
        return str(seq["subject"])
    return str(seq.get("sequence", "") or action or "all")


def LabelledWindows(windows, labels: Sequence[str]):
    """``windows`` (a :class:`~modeling_mpm.data.PoseWindowDataset`) with the per-sequence action
    ``labels``: its items become ``{"pose_2d", "pose_3d", "action"}`` (sets ``windows.labels``)."""
    windows.labels = [str(x) for x in labels]
    return windows


def _convert_skeleton(seqs: List[Dict], skel: Skeleton, where: str) -> List[Dict]:
    out = []
    for s in seqs:
        name = str(s.get("skeleton", "h36m17"))
        if name == skel.name:
            out.append(s)
            continue
        if name == "h36m17" and skel.name == "h36m16":
            s = dict(s)
            for k in ("pose_3d", "pose_2d"):
                if s.get(k) is not None and len(s[k]):
                    s[k] = h36m17_to_h36m16(s[k])
                elif s.get(k) is not None:
                    s[k] = np.zeros((0, 16, s[k].shape[-1]), np.float32)
            s["skeleton"] = "h36m16"
            out.append(s)
            continue
        raise ValueError(f"{where}: sequence {s.get('sequence')!r} uses skeleton {name!r} but the model "
                         f"uses {skel.name!r}; prepare the data with the model's joint layout")
    return out


def _split_sequences(cfg, split: Optional[str], skel: Skeleton) -> Optional[List[Dict]]:
    from ..data import load_demo_dataset, load_dataset_dir, load_sequences

    if split is None:
        return None
    d = cfg.data
    if d.source == "demo":
        dd = load_demo_dataset()
        if "+" in split:  # "train+validation": every named split, concatenated
            return [s for part in split.split("+") for s in _split_sequences(cfg, part, skel)]
        if split not in dd:
            if split == d.test_split and "validation" in dd:
                split = "validation"  # the demo has no test split: evaluate on the held-out split
            else:
                raise ValueError(f"the demo data has no split {split!r}; it has {list(dd)}")
        sources = [("demo", dd[split])]
    else:
        sources = []
        for path in d.paths:
            from .hub import is_repo_id, load_hub_dataset

            if not os.path.exists(path) and not is_repo_id(path):
                raise ValueError(f"data.paths: {path!r} does not exist (prepare it with `mpm prepare`) and is "
                                 "not a Hub dataset repo id like 'org/name'")
            ds = load_dataset_dir(path) if os.path.exists(path) else load_hub_dataset(path)
            if hasattr(ds, "keys"):
                if split not in ds:
                    if split == d.train_split:
                        raise ValueError(f"data set {path} has no split {split!r}; it has {list(ds)}")
                    continue
                sources.append((path, ds[split]))
            elif split == d.train_split:
                sources.append((path, ds))
        if not sources:
            return None
    seqs: List[Dict] = []
    for where, ds in sources:
        cols = tuple(c for c in _COLUMNS if c in ds.column_names)
        seqs += _convert_skeleton(load_sequences(ds, columns=cols), skel, where)
    return seqs


def load_window_splits(cfg, num_frames: int, skel: Skeleton):
    """``(train, val, test)`` labelled :class:`modeling_mpm.data.PoseWindowDataset` (or None)."""
    from ..cameras import VirtualCameraSampler
    from ..data import DEMO_VALIDATION_CAMERAS, PoseWindowDataset
    from ..data.augment import augment_from_config

    d = cfg.data
    motion, camera, noise = augment_from_config(d.get("augment"), skel.name)
    out = []
    for split, train in ((d.train_split, True), (d.val_split, False), (d.test_split, False)):
        seqs = _split_sequences(cfg, split, skel)
        if train and seqs and d.get("train_sequences") is not None:
            names = [str(s.get("sequence", "")) for s in seqs]
            unknown = sorted(set(d.train_sequences) - set(names))
            if unknown:
                raise ValueError(f"data.train_sequences: no training sequence(s) {unknown}; the split has {names}")
            seqs = [s for s, n in zip(seqs, names) if n in set(d.train_sequences)]
        if seqs is None or not seqs:
            if train:
                raise ValueError(f"no training sequences found for split {split!r} in {d.source} data")
            out.append(None)
            continue
        windows = PoseWindowDataset(
            seqs, num_frames=num_frames, tds=d.tds, stride=d.train_stride if train else d.eval_stride,
            mode="paired", flip_prob=0.0, skeleton=skel.name,
            virtual_cameras=(camera or VirtualCameraSampler()) if train else list(DEMO_VALIDATION_CAMERAS),
            valid_only=not train, seed=cfg.training.seed,
            noise_2d=noise if train else None, augment=motion if train else None,
            labels=[sequence_label(s) for s in seqs])
        out.append(windows)
    return tuple(out)


def _window_dataset(ds):
    """The :class:`~modeling_mpm.data.PoseWindowDataset` under ``Subset`` / ``RepeatedWindows``."""
    while ds is not None and not hasattr(ds, "rng_state"):
        ds = getattr(ds, "dataset", None)
    return ds


def dataset_rng_state(ds) -> Optional[Dict]:
    """The random stream (cameras, flips, noise) of the window dataset inside ``ds``, or None."""
    w = _window_dataset(ds)
    return None if w is None else w.rng_state()


def restore_dataset_rng_state(ds, state: Optional[Dict]) -> None:
    w = _window_dataset(ds)
    if w is not None and state is not None:
        w.set_rng_state(state)
