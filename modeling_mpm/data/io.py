"""Pose-sequence data sets on disk: one row per sequence, ``Array3D((None, J, C), "float32")``.

Columns of every prepared data set (:func:`sequence_features`):

==================  ===========================================  ===============================
column              type                                         meaning
==================  ===========================================  ===============================
``sequence``        string                                       unique id, e.g. ``S1/Walking 1/54138969``
``source``          string                                       ``h36m``, ``mpi_inf_3dhp``, ``amass``, ``cmu_bvh``, ``holosoma_climb``, ...
``subject``         string                                       subject id (``S1``, ``TS3``, ...)
``action``          string                                       action / take name ("" if none)
``camera``          string                                       camera id ("" for world-frame motion)
``skeleton``        string                                       ``h36m17`` or ``h36m16``
``coordinate_frame`` string                                      ``camera`` (x right, y down, z forward) or ``world`` (Z up)
``fps``             float32                                      frames per second
``pose_3d``         Array3D((None, J, 3), float32)               joint positions, metres, absolute (not root-relative)
``pose_2d``         Array3D((None, J, 2), float32)               image keypoints; (0, J, 2) when the source has none
``pose_2d_units``   string                                       ``pixels``, ``normalized`` (screen coords) or ``none``
``image_size``      Sequence(int32, 2)                           ``[width, height]`` pixels; ``[0, 0]`` if unknown
``intrinsics``      Sequence(float32, 9)                         pixel ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``; zeros if unknown
``valid``           Sequence(bool)                               per-frame validity flag (T,)
==================  ===========================================  ===============================

Saved with :func:`save_dataset` (``save_to_disk`` folder or Parquet shards, written to a
temporary folder next to the target and renamed into place). :func:`load_sequences` reads the
columns once as NumPy arrays for :class:`modeling_mpm.data.PoseWindowDataset`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

__all__ = [
    "sequence_features",
    "make_row",
    "rows_to_dataset",
    "save_dataset",
    "load_dataset_dir",
    "load_sequences",
    "push_dataset_to_hub",
    "HubOfflineError",
]

STRING_COLUMNS = ("sequence", "source", "subject", "action", "camera", "skeleton", "coordinate_frame",
                  "pose_2d_units")


class HubOfflineError(RuntimeError):
    """Raised when pushing to the Hub is requested while HF_HUB_OFFLINE=1."""


def sequence_features(num_joints: int):
    """The :class:`datasets.Features` of a prepared pose-sequence data set with ``num_joints``."""
    from datasets import Array3D, Features, Sequence as HFSequence, Value

    return Features({
        "sequence": Value("string"),
        "source": Value("string"),
        "subject": Value("string"),
        "action": Value("string"),
        "camera": Value("string"),
        "skeleton": Value("string"),
        "coordinate_frame": Value("string"),
        "fps": Value("float32"),
        "pose_3d": Array3D((None, num_joints, 3), "float32"),
        "pose_2d": Array3D((None, num_joints, 2), "float32"),
        "pose_2d_units": Value("string"),
        "image_size": HFSequence(Value("int32"), length=2),
        "intrinsics": HFSequence(Value("float32"), length=9),
        "valid": HFSequence(Value("bool")),
    })


def make_row(*, sequence: str, source: str, pose_3d: np.ndarray, fps: float, skeleton: str,
             coordinate_frame: str, subject: str = "", action: str = "", camera: str = "",
             pose_2d: Optional[np.ndarray] = None, pose_2d_units: Optional[str] = None,
             image_size=(0, 0), intrinsics=None, valid: Optional[np.ndarray] = None) -> dict:
    """Validate and build one row. ``pose_3d`` (T, J, 3) metres; ``pose_2d`` (T, J, 2) or None."""
    pose_3d = np.asarray(pose_3d, dtype=np.float32)
    if pose_3d.ndim != 3 or pose_3d.shape[-1] != 3:
        raise ValueError(f"{sequence}: pose_3d must be (T, J, 3), got shape {pose_3d.shape}")
    T, J = pose_3d.shape[:2]
    if pose_2d is None:
        pose_2d = np.zeros((0, J, 2), np.float32)
        pose_2d_units = "none"
    else:
        pose_2d = np.asarray(pose_2d, dtype=np.float32)
        if pose_2d.shape != (T, J, 2):
            raise ValueError(f"{sequence}: pose_2d must be {(T, J, 2)} to match pose_3d, got {pose_2d.shape}")
        if pose_2d_units not in ("pixels", "normalized"):
            raise ValueError(f"{sequence}: pose_2d_units must be 'pixels' or 'normalized', got {pose_2d_units!r}")
    if coordinate_frame not in ("camera", "world"):
        raise ValueError(f"{sequence}: coordinate_frame must be 'camera' or 'world', got {coordinate_frame!r}")
    if intrinsics is None:
        intrinsics = np.zeros(9, np.float32)
    intrinsics = np.asarray(intrinsics, dtype=np.float32)
    if intrinsics.shape != (9,):
        raise ValueError(f"{sequence}: intrinsics must have 9 values, got shape {intrinsics.shape}")
    valid = np.ones(T, bool) if valid is None else np.asarray(valid).astype(bool).reshape(-1)
    if valid.shape != (T,):
        raise ValueError(f"{sequence}: valid must have {T} flags, got {valid.shape}")
    return {
        "sequence": sequence, "source": source, "subject": subject, "action": action, "camera": camera,
        "skeleton": skeleton, "coordinate_frame": coordinate_frame, "fps": float(fps),
        "pose_3d": pose_3d, "pose_2d": pose_2d, "pose_2d_units": pose_2d_units,
        "image_size": [int(image_size[0]), int(image_size[1])], "intrinsics": intrinsics.tolist(),
        "valid": valid.tolist(),
    }


def rows_to_dataset(rows: Iterable[dict], num_joints: Optional[int] = None):
    """A :class:`datasets.Dataset` from rows made by :func:`make_row`."""
    from datasets import Dataset

    rows = list(rows)
    if num_joints is None:
        if not rows:
            raise ValueError("no rows and no num_joints: cannot infer the schema")
        num_joints = rows[0]["pose_3d"].shape[1]
    for r in rows:
        if r["pose_3d"].shape[1] != num_joints:
            raise ValueError(f"{r['sequence']}: {r['pose_3d'].shape[1]} joints, expected {num_joints}")
    features = sequence_features(num_joints)
    if not rows:
        return Dataset.from_dict({k: [] for k in features}, features=features)
    return Dataset.from_list(rows, features=features)


def _check_push_allowed():
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise HubOfflineError("--push_to_hub was requested but HF_HUB_OFFLINE=1 is set: the data was "
                              "not pushed. Unset HF_HUB_OFFLINE (and log in) to push, or drop --push_to_hub.")


def push_dataset_to_hub(dataset, repo_id: str, private: bool = True):
    """Push a Dataset / DatasetDict to the Hub; fails at once with :class:`HubOfflineError`
    when ``HF_HUB_OFFLINE=1``."""
    _check_push_allowed()
    dataset.push_to_hub(repo_id, private=private)


def save_dataset(dataset, output: Union[str, os.PathLike], format: str = "arrow",
                 overwrite: bool = False, max_shard_rows: int = 200) -> Path:
    """Write a Dataset or DatasetDict atomically to the folder ``output``.

    ``format="arrow"``: ``save_to_disk`` layout (load with :func:`load_dataset_dir` or
    ``datasets.load_from_disk``). ``format="parquet"``: ``<split>/part-00000.parquet`` shards
    of at most ``max_shard_rows`` sequences (load with ``load_dataset("parquet", data_dir=...)``
    or :func:`load_dataset_dir`). Everything is written to a temporary folder next to
    ``output`` and renamed into place, so a crash never leaves a half-written data set.
    """
    from datasets import Dataset, DatasetDict

    output = Path(output).absolute()
    if format not in ("arrow", "parquet"):
        raise ValueError(f"format must be 'arrow' or 'parquet', got {format!r}")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True (--overwrite) to replace it")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.parent / f".{output.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if format == "arrow":
            dataset.save_to_disk(str(tmp))
        else:
            splits = dataset if isinstance(dataset, DatasetDict) else {"train": dataset}
            for split, ds in splits.items():
                (tmp / split).mkdir(parents=True)
                n = max(1, -(-len(ds) // max_shard_rows))
                for k in range(n):
                    shard = ds.shard(num_shards=n, index=k, contiguous=True)
                    shard.to_parquet(str(tmp / split / f"part-{k:05d}-of-{n:05d}.parquet"))
        if output.exists():
            old = output.parent / f".{output.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(output, old)
            os.replace(tmp, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return output


def load_dataset_dir(path: Union[str, os.PathLike]):
    """Load a folder written by :func:`save_dataset` (either format); returns a Dataset or a
    DatasetDict (Parquet folders always give a DatasetDict keyed by split)."""
    from datasets import load_dataset, load_from_disk

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data set at {path}")
    if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
        return load_from_disk(str(path))
    splits = {p.name: sorted(str(f) for f in p.glob("*.parquet")) for p in path.iterdir() if p.is_dir()}
    splits = {k: v for k, v in splits.items() if v}
    if not splits:
        raise ValueError(f"{path} is neither a save_to_disk folder nor a folder of <split>/*.parquet files")
    return load_dataset("parquet", data_files=splits)


def load_sequences(dataset, columns: Sequence[str] = ("pose_3d", "pose_2d", "intrinsics", "image_size",
                                                      "valid", "fps", "sequence", "coordinate_frame",
                                                      "pose_2d_units", "skeleton")) -> List[dict]:
    """Read a prepared Dataset's columns once as NumPy and return one dict per sequence
    (``pose_3d`` (T, J, 3), ``pose_2d`` (T or 0, J, 2), ``intrinsics`` (9,), ``image_size``
    (2,), ``valid`` (T,), ``fps``, strings). ``dataset`` may also be a path."""
    if isinstance(dataset, (str, os.PathLike)):
        dataset = load_dataset_dir(dataset)
    from datasets import DatasetDict

    if isinstance(dataset, DatasetDict):
        raise TypeError(f"pass one split (e.g. ds['train']), not a DatasetDict with {list(dataset)}")
    present = [c for c in columns if c in dataset.column_names]
    ds = dataset.with_format("numpy", columns=present)
    cols = {c: list(ds[c]) for c in present}
    out = []
    for i in range(len(dataset)):
        rec = {c: cols[c][i] for c in present}
        for c in ("pose_3d", "pose_2d", "intrinsics"):
            if c in rec:
                rec[c] = np.asarray(rec[c], dtype=np.float32)
        for c in STRING_COLUMNS:
            if c in rec:
                rec[c] = str(rec[c])
        if "valid" in rec:
            rec["valid"] = np.asarray(rec["valid"], dtype=bool)
        out.append(rec)
    return out
