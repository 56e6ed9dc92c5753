"""Pose-sequence data sets on disk: one row per sequence (columns: :func:`sequence_features`, docs/data.md).

``pose_3d`` (T, J, 3) metres, absolute (``coordinate_frame`` ``camera``: x right, y down, z forward; ``world``:
Z up); ``pose_2d`` (T, J, 2) in ``pose_2d_units`` (``pixels`` / ``normalized``; (0, J, 2) and ``none`` without
2D); ``image_size`` ``[w, h]`` pixels and pixel ``intrinsics`` ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` (zeros
if unknown); ``valid`` (T,) per-frame flags. :func:`save_dataset` writes atomically (``save_to_disk`` folder or
Parquet shards); :func:`load_sequences` reads the columns once as NumPy.

NumPy files: :func:`read_npy` / :func:`read_npz` read plain arrays only; :func:`read_npz_object` reads the
pickled dicts of the released Human3.6M / 3DHP / AMASS files with :class:`RestrictedUnpickler` (plain data
only, nothing in a file runs); every read problem is a ``ValueError`` naming the file.

Keypoint files (:func:`read_keypoints`): ``.npy`` ``(frames, joints, 2|3)``; ``.npz`` with the array under
``keypoints`` (else ``keypoints_2d``, ``pose_2d``, ``poses`` or the only array), optional ``scores`` /
``confidence`` ``(frames, joints)`` and ``image_size`` ``(width, height)``; COCO-style ``.json``
(:func:`read_coco_json`): people only (``category_id`` 1 or absent), the highest ``score`` per ``image_id``,
frames ordered by id; integer ids missing between the first and the last become empty frames (all joints
missing), at most :data:`MAX_JSON_FRAMES` of them.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import io as _io
import json
import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import ExclusiveLock, LockBusyError, atomic_write_dir, atomic_write_file, recover_replaced

__all__ = [
    "sequence_features", "make_row", "rows_to_dataset", "save_dataset", "load_dataset_dir", "load_sequences",
    "push_dataset_to_hub", "HubOfflineError", "RestrictedUnpickler", "read_npy", "read_npz", "read_npz_object",
    "read_torch_plain", "save_npz_atomic", "is_prepared_dataset_dir", "holds_working_directory",
    "clean_interrupted_writes", "dataset_write_lock", "DatasetLockError", "read_keypoints", "read_coco_json",
    "coco_image_size", "read_json", "MAX_ARRAY_BYTES", "MAX_JSON_DEPTH", "MAX_JSON_FRAMES",
]

STRING_COLUMNS = ("sequence", "source", "subject", "action", "camera", "skeleton", "coordinate_frame", "pose_2d_units")


class DatasetLockError(LockBusyError):
    """Another process is writing the same output data set."""


class HubOfflineError(RuntimeError):
    """Raised when pushing to the Hub is requested while HF_HUB_OFFLINE=1."""


def sequence_features(num_joints: int):
    """The :class:`datasets.Features` of a prepared pose-sequence data set with ``num_joints``."""
    from datasets import Array3D, Features, Sequence as HFSequence, Value

    return Features({
        "sequence": Value("string"), "source": Value("string"), "subject": Value("string"),
        "action": Value("string"), "camera": Value("string"), "skeleton": Value("string"),
        "coordinate_frame": Value("string"), "fps": Value("float32"),
        "pose_3d": Array3D((None, num_joints, 3), "float32"), "pose_2d": Array3D((None, num_joints, 2), "float32"),
        "pose_2d_units": Value("string"), "image_size": HFSequence(Value("int32"), length=2),
        "intrinsics": HFSequence(Value("float32"), length=9), "valid": HFSequence(Value("bool")),
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
    if T == 0:
        raise ValueError(f"{sequence}: no frames (0 frames of pose_3d; was every frame skipped, e.g. by a "
                         "--skip-frames past the end of the take?); remove the input or keep some frames")
    if not np.isfinite(pose_3d).all():
        bad = int((~np.isfinite(pose_3d)).any(axis=(1, 2)).sum())
        raise ValueError(f"{sequence}: pose_3d has NaN or infinite values in {bad} of {T} frames (a bad --scale, or "
                         "a corrupt input); a data set for training must hold finite positions")
    if J > 1 and not (np.ptp(pose_3d, axis=1) > 0).any():
        raise ValueError(f"{sequence}: every joint is at the same point in every frame (degenerate motion, e.g. "
                         "--scale 0); nothing to learn from")
    if pose_2d is None:
        pose_2d = np.zeros((0, J, 2), np.float32)
        pose_2d_units = "none"
    else:
        pose_2d = np.asarray(pose_2d, dtype=np.float32)
        if pose_2d.shape != (T, J, 2):
            raise ValueError(f"{sequence}: pose_2d must be {(T, J, 2)} to match pose_3d, got {pose_2d.shape}")
        if not np.isfinite(pose_2d).all():
            raise ValueError(f"{sequence}: pose_2d has NaN or infinite values; a data set must hold finite keypoints")
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
        raise HubOfflineError("--push-to-hub was requested but HF_HUB_OFFLINE=1 is set: the data was "
                              "not pushed. Unset HF_HUB_OFFLINE (and log in) to push, or drop --push-to-hub.")


def push_dataset_to_hub(dataset, repo_id: str, private: bool = True):
    """Push a Dataset / DatasetDict to the Hub; :class:`HubOfflineError` at once when ``HF_HUB_OFFLINE=1``."""
    _check_push_allowed()
    dataset.push_to_hub(repo_id, private=private)


def dataset_write_lock(output: Union[str, os.PathLike]) -> ExclusiveLock:
    """Re-entrant :class:`~modeling_mpm.atomic.ExclusiveLock` ``.<name>.lock`` next to ``output``: a second
    writer gets :class:`DatasetLockError`; a lock left by a killed process is taken over."""
    output = Path(output).absolute()
    return ExclusiveLock(output.parent / f".{output.name}.lock", reentrant=True, on_busy=lambda pid: DatasetLockError(
        f"{output}: another 'mpm prepare'{f' (process {pid})' if pid else ''} is writing this data set; wait for "
        "it to finish or choose another --output"))


def save_dataset(dataset, output: Union[str, os.PathLike], format: str = "arrow", overwrite: bool = False,
                 max_shard_rows: int = 200) -> Path:
    """Write a Dataset or DatasetDict atomically (temporary folder renamed into place) to the folder ``output``,
    holding :func:`dataset_write_lock`. ``format``: ``"arrow"`` (``save_to_disk`` layout) or ``"parquet"``
    (``<split>/part-*.parquet`` shards of at most ``max_shard_rows`` sequences); :func:`load_dataset_dir` reads both.
    """
    from datasets import DatasetDict

    output = Path(output).absolute()
    if format not in ("arrow", "parquet"):
        raise ValueError(f"format must be 'arrow' or 'parquet', got {format!r}")
    with dataset_write_lock(output):
        clean_interrupted_writes(output)
        if output.exists() and not overwrite:
            raise FileExistsError(f"{output} exists; pass overwrite=True (--overwrite) to replace it")
        if output.exists() and not is_prepared_dataset_dir(output) and (not output.is_dir() or any(output.iterdir())):
            raise ValueError(f"refusing to replace {output}: it is not a prepared data set (--overwrite only "
                             "replaces a folder written by 'mpm prepare'); choose a new --output folder")
        if output.exists() and holds_working_directory(output):
            raise ValueError(f"refusing to replace {output}: it is (or contains) the working directory")

        def write(tmp: str) -> None:
            if format == "arrow":
                os.rmdir(tmp)  # save_to_disk makes the folder itself
                dataset.save_to_disk(tmp)
            else:
                splits = dataset if isinstance(dataset, DatasetDict) else {"train": dataset}
                for split, ds in splits.items():
                    os.makedirs(os.path.join(tmp, split))
                    n = max(1, -(-len(ds) // max_shard_rows))
                    for k in range(n):
                        shard = ds.shard(num_shards=n, index=k, contiguous=True)
                        shard.to_parquet(os.path.join(tmp, split, f"part-{k:05d}-of-{n:05d}.parquet"))

        atomic_write_dir(str(output), write)
    return output


def holds_working_directory(path: Union[str, os.PathLike]) -> bool:
    """True when ``path`` is the working directory or a folder above it (symlinks resolved)."""
    here, target = os.path.realpath(os.getcwd()), os.path.realpath(path)
    return here == target or here.startswith(target.rstrip(os.sep) + os.sep)


def is_prepared_dataset_dir(path: Union[str, os.PathLike]) -> bool:
    """True for a folder written by :func:`save_dataset`: ``save_to_disk`` (``dataset_dict.json``, or
    ``dataset_info.json`` + ``state.json``) or only ``<split>/*.parquet`` shards."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / "dataset_dict.json").is_file() or ((path / "dataset_info.json").is_file()
                                                  and (path / "state.json").is_file()):
        return True

    def parquet_split(split: Path) -> bool:
        files = list(split.iterdir()) if split.is_dir() and not split.is_symlink() else []
        return bool(files) and all(f.is_file() and f.suffix == ".parquet" for f in files)

    entries = list(path.iterdir())
    return bool(entries) and all(map(parquet_split, entries))


def clean_interrupted_writes(output: Union[str, os.PathLike]) -> List[str]:
    """Tidy what an interrupted :func:`save_dataset` left next to ``output``
    (:func:`~modeling_mpm.atomic.recover_replaced`): ``.<name>.tmp-*`` folders are deleted; a ``.<name>.old-*``
    prepared data set is moved back when ``output`` is missing, else deleted. Returns one line per action."""
    return recover_replaced(str(Path(output).absolute()), is_complete=is_prepared_dataset_dir,
                            what="the previous data set ")


def load_dataset_dir(path: Union[str, os.PathLike]):
    """Load a folder written by :func:`save_dataset`: a Dataset or DatasetDict (always a DatasetDict for Parquet)."""
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


def load_sequences(dataset, columns: Sequence[str] = ("pose_3d", "pose_2d", "intrinsics", "image_size", "valid", "fps",
                                                      "sequence", "coordinate_frame", "pose_2d_units", "skeleton")
                   ) -> List[dict]:
    """A prepared Dataset's (or path's) columns read once as NumPy, one dict per sequence (``pose_3d`` (T, J, 3),
    ``pose_2d`` (T or 0, J, 2), ``intrinsics`` (9,), ``image_size`` (2,), ``valid`` (T,), ``fps``, strings)."""
    if isinstance(dataset, (str, os.PathLike)):
        dataset = load_dataset_dir(dataset)
    from datasets import DatasetDict

    if isinstance(dataset, DatasetDict):
        raise TypeError(f"pass one split (e.g. ds['train']), not a DatasetDict with {list(dataset)}")
    present = [c for c in columns if c in dataset.column_names]
    ds = dataset.with_format("numpy", columns=present)
    cast = dict.fromkeys(STRING_COLUMNS, str)
    cast.update(dict.fromkeys(("pose_3d", "pose_2d", "intrinsics"), lambda v: np.asarray(v, dtype=np.float32)))
    cast["valid"] = lambda v: np.asarray(v, dtype=bool)
    cols = {c: [cast.get(c, lambda v: v)(v) for v in ds[c]] for c in present}
    return [{c: cols[c][i] for c in present} for i in range(len(dataset))]


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"

#: most bytes one array (or one ``.npz`` member, or one object a pickled member builds) may take;
#: sizes are checked before anything is allocated. ``MPM_MAX_ARRAY_BYTES`` overrides it.
MAX_ARRAY_BYTES = 4 << 30


def max_array_bytes() -> int:
    try:
        return int(os.environ.get("MPM_MAX_ARRAY_BYTES", MAX_ARRAY_BYTES))
    except ValueError:
        return MAX_ARRAY_BYTES


def _too_big(where: str, what: str, nbytes: int) -> ValueError:
    return ValueError(f"{where}: {what} would take {nbytes:,} bytes, more than the {max_array_bytes():,}-byte limit "
                      "on one array (set MPM_MAX_ARRAY_BYTES to raise it if the file is genuine)")


def _read_npy_header(fp, where: str):
    """``(shape, fortran_order, dtype, header_end)`` of the ``.npy`` stream ``fp`` (at its start); no data read."""
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fp, max_header_size=1 << 16)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(fp, max_header_size=1 << 16)
        elif version == (3, 0) and hasattr(npformat, "_read_array_header"):  # utf-8 header
            shape, fortran, dtype = npformat._read_array_header(fp, version, max_header_size=1 << 16)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError) as e:
        raise ValueError(f"{where}: unreadable .npy header ({e})") from None
    return shape, fortran, dtype, fp.tell()


def _check_declared_size(where: str, shape, dtype, available: Optional[int]) -> None:
    """Refuse a header whose array would exceed :func:`max_array_bytes` or (plain data) the bytes available."""
    nbytes = math.prod(int(d) for d in shape) * dtype.itemsize
    if nbytes > max_array_bytes():
        raise _too_big(where, f"the array its header declares ({'x'.join(map(str, shape)) or 'scalar'} {dtype})",
                       nbytes)
    if not dtype.hasobject and available is not None and nbytes > available:
        raise ValueError(f"{where}: its header declares {nbytes:,} bytes of data ({shape} {dtype}) but the file "
                         f"holds {available:,}; the file is truncated or crafted")


def _describe_start(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "it is empty (0 bytes)"
    if head.startswith((b"\x80", b"(", b"}", b"]")):
        return "it holds a raw Python pickle, not NumPy data"
    return f"its first bytes {head!r} are not the NumPy or zip signature"


def _check_file(path: str, magic: bytes = b"", kind: str = "") -> str:
    """``path`` as a string; a ValueError when it is a folder, missing, or does not start with ``magic``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, expected a file")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(len(magic))
    if head != magic:
        raise ValueError(f"{path}: not a NumPy {kind} file ({_describe_start(path)})")
    return path


def read_npy(path) -> np.ndarray:
    """Read an ``.npy`` file of plain (non-object) data; ValueError naming the file otherwise."""
    path = _check_file(path, _NPY_MAGIC, ".npy")
    with open(path, "rb") as f:
        shape, _, dtype, start = _read_npy_header(f, path)
    _check_declared_size(path, shape, dtype, os.path.getsize(path) - start)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise ValueError(f"{path}: holds Python objects (pickled), not a numeric array; save it with "
                             "np.save(path, np.asarray(x, dtype=np.float32))") from None
        raise ValueError(f"{path}: unreadable .npy file ({e}); the file is probably truncated") from None
    except (EOFError, OSError) as e:
        raise ValueError(f"{path}: unreadable .npy file ({e or type(e).__name__}); probably truncated") from None


def read_npz(path) -> dict:
    """``{key: ndarray}`` of an ``.npz`` file (no unpickling); ValueError naming the file when it is not a zip of
    ``.npy`` members, is truncated, or a member holds pickled Python objects."""
    path = _check_file(path, _ZIP_MAGIC, ".npz")
    _check_npz_members(path)
    out = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                try:
                    out[key] = z[key]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        raise ValueError(f"{path}: array {key!r} holds pickled Python objects; this command "
                                         "reads plain numeric arrays only") from None
                    raise
    except ValueError as e:
        if str(e).startswith(path):
            raise
        raise _truncated_npz(path, e) from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as e:
        raise _truncated_npz(path, e) from None
    return out


def _check_npz_members(path: str, only: Optional[str] = None) -> None:
    """Check the declared size (zip entry and array header) of every ``.npy`` member (``only``: that one)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy") or (only is not None and info.filename != only + ".npy"):
                    continue
                where = f"{path}[{info.filename[:-4]!r}]"
                if info.file_size > max_array_bytes():
                    raise _too_big(where, "the member, unpacked,", info.file_size)
                with zf.open(info) as member:
                    shape, _, dtype, start = _read_npy_header(member, where)
                _check_declared_size(where, shape, dtype, info.file_size - start)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, NotImplementedError) as e:
        raise _truncated_npz(path, e) from None


def _truncated_npz(path: str, e: BaseException) -> ValueError:
    return ValueError(f"{path}: unreadable .npz file ({e or type(e).__name__}); the file is probably truncated")


def _numpy_multiarray(name: str):
    try:
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - NumPy < 2
        from numpy.core import multiarray
    return getattr(multiarray, name)


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle reader that builds only plain data: builtin containers, numbers, strings, ``bytes``,
    ``bytearray``, ``collections.OrderedDict``, ``_codecs.encode`` (Python-2-era bytes) and NumPy's ``ndarray``,
    ``dtype``, ``_reconstruct`` / ``scalar`` (:data:`_ALLOWED_GLOBALS`, sizes checked). Any other global raises
    :class:`pickle.UnpicklingError` before anything is called."""

    def find_class(self, module, name):
        alias = {"__builtin__": "builtins", "numpy.core.multiarray": "numpy._core.multiarray"}
        found = _ALLOWED_GLOBALS.get((alias.get(module, module), name))
        if found is None:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only builtin containers, numbers, "
                                         "strings and NumPy arrays are allowed in a data file")
        return found


class _SizedNdarray:
    """``numpy.ndarray`` for the restricted unpickler: calling it checks the size first."""

    def __call__(self, shape, dtype=float, *args, **kwargs):
        _check_pickled_array(shape, dtype)
        return np.ndarray(shape, dtype, *args, **kwargs)


_NDARRAY = _SizedNdarray()


def _check_pickled_array(shape, dtype) -> None:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize
    if nbytes > max_array_bytes():
        raise pickle.UnpicklingError(f"a pickled array of shape {shape} would take {nbytes:,} bytes, more than the "
                                     f"{max_array_bytes():,}-byte limit")


def _sized_reconstruct(subtype, shape, dtype):
    if subtype is _NDARRAY:
        subtype = np.ndarray
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("refused to rebuild an array of a class other than numpy.ndarray")
    _check_pickled_array(shape, dtype)
    return _numpy_multiarray("_reconstruct")(subtype, shape, dtype)


def _sized_scalar(dtype, *args):
    if np.dtype(dtype).itemsize > max_array_bytes():
        raise pickle.UnpicklingError(f"a pickled scalar of {np.dtype(dtype).itemsize:,} bytes exceeds the limit")
    return _numpy_multiarray("scalar")(dtype, *args)


def _sized_bytes(name: str):
    cls = getattr(builtins, name)

    def make(*args):
        if args and isinstance(args[0], (int, np.integer)) and not isinstance(args[0], bool) \
                and int(args[0]) > max_array_bytes():
            raise pickle.UnpicklingError(f"a pickled {name}({int(args[0]):,}) would exceed the "
                                         f"{max_array_bytes():,}-byte limit")
        return cls(*args)

    return make


#: ``(module, name)`` -> what :class:`RestrictedUnpickler` builds for it (sizes checked first)
_ALLOWED_GLOBALS = {
    **{("builtins", n): getattr(builtins, n)
       for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str")},
    ("builtins", "bytes"): _sized_bytes("bytes"), ("builtins", "bytearray"): _sized_bytes("bytearray"),
    ("collections", "OrderedDict"): collections.OrderedDict, ("_codecs", "encode"): codecs.encode,
    ("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): _NDARRAY,
    ("numpy._core.multiarray", "_reconstruct"): _sized_reconstruct, ("numpy._core.multiarray", "scalar"): _sized_scalar,
}


def _read_member_restricted(fp):
    """One ``.npy`` member: plain data as NumPy reads it; object arrays through the restricted unpickler."""
    from numpy.lib import format as npformat

    shape, fortran, dtype, _ = _read_npy_header(fp, "member")
    if not dtype.hasobject:
        fp.seek(0)
        return npformat.read_array(fp, allow_pickle=False)
    return RestrictedUnpickler(fp, encoding="latin1").load()


def read_torch_plain(path, error: type = ValueError):
    """``torch.load(path, weights_only=True)`` on the CPU (plain data, nothing runs). An unreadable file or other
    objects raise ``error`` (a ``ValueError`` subclass) naming the file and the reason."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        text = str(err)
        if "WeightsUnpickler error:" in text:
            reason = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        else:
            reason = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        raise error(f"refused to load {path}: it is unreadable or holds objects other than tensors, numbers, "
                    f"strings and containers ({reason}); files are read as plain data (torch.load "
                    "weights_only=True), never run as code") from None


def read_npz_object(path, key: str):
    """``np.load(path, allow_pickle=True)[key]`` through :class:`RestrictedUnpickler`; a 0-d object array (a
    pickled dict) is unwrapped to its item. ``ValueError`` naming the file: missing key, not an ``.npz``,
    truncated, or a refused object."""
    path = _check_file(path, _ZIP_MAGIC, ".npz")
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if key not in names:
                raise ValueError(f"{path}: no key {key!r} (keys: {names})")
            _check_npz_members(path, only=key)
            with zf.open(key + ".npy") as member:
                obj = _read_member_restricted(_io.BufferedReader(member))
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}[{key!r}]: {e}") from None
    except ValueError as e:
        if str(e).startswith(path):
            raise
        raise ValueError(f"{path}[{key!r}]: unreadable ({e})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise _truncated_npz(path, e) from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    return obj


def save_npz_atomic(path, **arrays) -> str:
    """``np.savez(path, **arrays)`` atomically (temporary file, then ``os.replace``); ``.npz`` appended when
    missing. Returns the path written."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder; give an output file name ending in .npz")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write_file(path, write)
    return path


#: most frames a COCO JSON may span from its first to its last integer image id (bounds the memory)
MAX_JSON_FRAMES = 1_000_000
#: deepest JSON nesting :func:`read_json` reads (COCO files nest 3 deep)
MAX_JSON_DEPTH = 64


def read_json(path) -> object:
    """``json.load`` of a user's file; a ``ValueError`` naming the file when it is not JSON, nests deeper than
    :data:`MAX_JSON_DEPTH` (checked before parsing) or is larger than :func:`max_array_bytes`."""
    path = _check_file(path)
    size = os.path.getsize(path)
    if size > max_array_bytes():
        raise _too_big(path, "the JSON file", size)
    with open(path, "rb") as f:
        raw = f.read()
    depth = _json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{path}: JSON nested {depth} levels deep, more than the {MAX_JSON_DEPTH} this reader "
                         "accepts; it is not a keypoint / joint-name file")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def _json_depth(raw: bytes) -> int:
    """Deepest ``[`` / ``{`` nesting of JSON text, brackets inside strings ignored (vectorised)."""
    a = np.frombuffer(raw, dtype=np.uint8)
    quote = a == ord('"')
    idx = np.flatnonzero(quote)  # a quote after an odd number of backslashes is escaped
    last_non_bs = np.maximum.accumulate(np.where(a != ord("\\"), np.arange(a.size), -1))
    prev = idx - 1
    before = np.where(prev >= 0, last_non_bs[np.maximum(prev, 0)], -1)
    n_bs = np.where(prev >= 0, prev - before, 0)
    quote[idx[n_bs % 2 == 1]] = False
    inside = (np.cumsum(quote) % 2 == 1) & ~quote
    step = np.where((a == ord("[")) | (a == ord("{")), 1, 0) - np.where((a == ord("]")) | (a == ord("}")), 1, 0)
    step[inside] = 0
    return int(np.cumsum(step).max(initial=0))


def read_coco_json(path: str, fill_gaps: bool = True) -> Tuple[np.ndarray, List]:
    """COCO-style keypoint results -> ``((frames, K, 3) float64 x, y, confidence, image ids)`` (module docstring)."""
    return _parse_coco(read_json(path), path, fill_gaps)


def coco_image_size(data) -> Optional[Tuple[float, float]]:
    """``(width, height)`` when every entry of a COCO dict's ``images`` gives the same positive size; else None."""
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not images:
        return None
    sizes = set()
    for im in images:
        if not isinstance(im, dict):
            return None
        w, h = im.get("width"), im.get("height")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf") for v in (w, h)):
            return None
        sizes.add((float(w), float(h)))
    return sizes.pop() if len(sizes) == 1 else None


def _parse_coco(data, path, fill_gaps: bool = True) -> Tuple[np.ndarray, List]:
    if isinstance(data, dict):
        data = data.get("annotations")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of COCO keypoint results [{{'image_id', 'keypoints': [x, y, c, "
                         "...], 'score'}, ...] (or a dict with 'annotations')")
    best: Dict = {}
    k_len = None
    for i, det in enumerate(data):
        if not isinstance(det, dict) or "keypoints" not in det or "image_id" not in det:
            raise ValueError(f"{path}: entry {i} needs 'image_id' and 'keypoints'")
        if det.get("category_id", 1) != 1:
            continue
        kps = det["keypoints"]
        if not isinstance(kps, list) or len(kps) % 3 or not kps:
            raise ValueError(f"{path}: entry {i}: 'keypoints' must be a flat list [x, y, c] * K")
        if k_len is None:
            k_len = len(kps)
        elif len(kps) != k_len:
            raise ValueError(f"{path}: entry {i} has {len(kps) // 3} keypoints, earlier ones {k_len // 3}")
        score = 1.0 if det.get("score") is None else det["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
            raise ValueError(f"{path}: entry {i}: 'score' must be a number, got {score!r}")
        score = float(score)
        iid = det["image_id"]
        if isinstance(iid, bool) or not isinstance(iid, (int, float, str)):
            raise ValueError(f"{path}: entry {i}: 'image_id' must be an integer or a string, got {iid!r}")
        if iid not in best or score > best[iid][0]:
            best[iid] = (score, kps)
    if not best:
        raise ValueError(f"{path}: no person keypoints found")
    ids = list(best)
    integer = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ids = sorted(ids) if integer else sorted(ids, key=str)
    if integer and fill_gaps:
        span = ids[-1] - ids[0] + 1
        if span > MAX_JSON_FRAMES:
            raise ValueError(f"{path}: integer image ids span {span:,} frames ({ids[0]} to {ids[-1]}) for "
                             f"{len(best):,} detections; ids between them become empty frames, which is limited to "
                             f"{MAX_JSON_FRAMES:,} frames to bound memory; number the images by frame index")
        ids = list(range(ids[0], ids[-1] + 1))
    k = k_len // 3
    out = np.full((len(ids), k, 3), np.nan)
    for n, iid in enumerate(ids):
        if iid in best:
            try:
                out[n] = np.asarray(best[iid][1], dtype=np.float64).reshape(k, 3)
            except (TypeError, ValueError):
                raise ValueError(f"{path}: image_id {iid!r}: keypoints are not numbers") from None
        else:
            out[n, :, 2] = 0.0
    return out, ids


def read_keypoints(path: str) -> Tuple[np.ndarray, Dict]:
    """2D keypoints of a ``.npy``, ``.npz`` or COCO-style ``.json`` file -> ``(array (frames, joints, 2 or 3),
    meta)``, ``meta`` possibly holding ``image_size`` and ``image_ids``."""
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, expected a keypoint file")
    if not os.path.isfile(path):
        raise ValueError(f"input file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    meta: Dict = {}
    if ext == ".json":
        data = read_json(path)
        arr, ids = _parse_coco(data, path)
        meta["image_ids"] = ids
        size = coco_image_size(data)
        if size is not None:
            meta["image_size"] = size
        return arr, meta
    if ext == ".npy":
        return read_npy(path), meta
    if ext == ".npz":
        z = read_npz(path)
        named = [k for k in ("keypoints", "keypoints_2d", "pose_2d", "poses") if k in z]
        cands = named[:1] or [k for k in z if k not in ("image_size", "scores", "confidence")]
        if len(cands) != 1:
            raise ValueError(f"{path}: put the (frames, joints, 2|3) array under 'keypoints' (found {list(z)})")
        arr = z[cands[0]]
        for key in ("scores", "confidence"):
            if key in z and arr.ndim == 3 and arr.shape[-1] == 2:
                conf = z[key]
                if conf.shape != arr.shape[:2]:
                    raise ValueError(f"{path}: '{key}' must be (frames, joints) = {arr.shape[:2]}, got {conf.shape}")
                arr = np.concatenate([arr, conf[..., None]], -1)
                break
        if "image_size" in z:
            meta["image_size"] = tuple(float(v) for v in np.asarray(z["image_size"]).reshape(-1))
        return arr, meta
    raise ValueError(f"unsupported input {path!r}: use .npy, .npz or COCO-style .json")
