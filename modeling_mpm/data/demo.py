"""The embedded demo data set: six real motion-capture sequences (two CMU takes, four climbing takes; DATA_NOTES.md)
in H36M-17, metres, 50 Hz, world frame **Z up**, absolute positions; 2D from virtual cameras
(:data:`DEMO_VALIDATION_CAMERAS` for validation). Validation = CMU ``01_03`` and climbing ``seq_3``; train = the rest.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import List

from ..cameras import VirtualCamera, VirtualCameraSampler

__all__ = ["DEMO_DATA_DIR", "DEMO_VALIDATION_SEQUENCES", "DEMO_VALIDATION_CAMERAS", "load_demo_dataset",
           "demo_window_datasets", "demo_validation_sequences"]

DEMO_DATA_DIR = Path(__file__).resolve().parent.parent / "demo_data"
DEMO_VALIDATION_SEQUENCES = ("cmu_01_03", "climb_seq_3")

DEMO_VALIDATION_CAMERAS: List[VirtualCamera] = VirtualCameraSampler().fixed(
    n=4, elevation=math.radians(10.0), distance=5.0, focal=1150.0, yaw0=math.radians(45.0))
"""Four fixed cameras (yaw 45, 135, 225, 315 degrees, 10 degrees above the subject, 5 m,
focal 1150 px, 1000 x 1000) used for the demo's validation windows."""


def load_demo_dataset(path: str | os.PathLike | None = None):
    """The shipped demo data as a ``datasets.DatasetDict`` with ``"train"`` and ``"validation"`` (offline)."""
    from datasets import load_from_disk

    path = Path(path) if path is not None else DEMO_DATA_DIR
    if not (path / "dataset_dict.json").exists():
        raise FileNotFoundError(f"no demo data set at {path}; rebuild it with "
                                "`mpm prepare demo --output modeling_mpm/demo_data`")
    return load_from_disk(str(path))


def demo_window_datasets(num_frames: int = 243, tds: int = 1, mode: str = "paired", seed: int = 0,
                         train_stride: int = 1, validation_stride: int = 10, flip_prob: float = 0.5,
                         noise_2d=None):
    """(train, validation) :class:`PoseWindowDataset` over the demo data: random virtual cameras
    and flips for training, :data:`DEMO_VALIDATION_CAMERAS`, no flip and no noise for validation."""
    from .windows import PoseWindowDataset

    dd = load_demo_dataset()
    train = PoseWindowDataset.from_dataset(dd["train"], num_frames=num_frames, tds=tds, mode=mode,
                                           stride=train_stride, flip_prob=flip_prob, seed=seed,
                                           virtual_cameras=VirtualCameraSampler(), noise_2d=noise_2d)
    val = PoseWindowDataset.from_dataset(dd["validation"], num_frames=num_frames, tds=tds, mode=mode,
                                         stride=validation_stride, flip_prob=0.0, seed=seed,
                                         virtual_cameras=DEMO_VALIDATION_CAMERAS)
    return train, val


def demo_validation_sequences() -> list:
    """Each demo validation sequence seen by each of :data:`DEMO_VALIDATION_CAMERAS`: 8 deterministic dicts of
    :func:`~modeling_mpm.data.windows.materialize_camera_sequences` (``pose_2d`` (T, 17, 2), ``pose_3d`` (T, 17, 3)
    metres, ...)."""
    from .io import load_sequences
    from .windows import materialize_camera_sequences

    return materialize_camera_sequences(load_sequences(load_demo_dataset()["validation"]), DEMO_VALIDATION_CAMERAS)
