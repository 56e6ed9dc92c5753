"""Rebuild the embedded demo data set (``modeling_mpm/demo_data``) from the raw motion capture in
``data/mocap`` (CMU BVH takes 01_01 and 01_03, holosoma climbing sequences 0-3).

Result: a ``save_to_disk`` DatasetDict with "train" and "validation" (split by sequence:
validation = CMU 01_03 and climbing seq_3), H36M-17, metres, 50 Hz, world frame Z up.

    mpm prepare demo --mocap-dir /path/to/data/mocap --output modeling_mpm/demo_data
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List

from modeling_mpm.data.demo import DEMO_VALIDATION_SEQUENCES
from modeling_mpm.data.io import make_row, rows_to_dataset, save_dataset
from modeling_mpm.data.mocap import load_bvh_h36m17, load_climb_npy

__all__ = ["demo_rows", "build_demo"]

CMU_TAKES = ("01_01", "01_03")


def demo_rows(mocap_dir, fps: float = 50.0) -> List[dict]:
    """One row per demo sequence (world frame, Z up, metres, ``fps``) from ``mocap_dir``."""
    mocap_dir = Path(mocap_dir)
    rows = []
    for take in CMU_TAKES:
        path = mocap_dir / "cmu" / f"{take}.bvh"
        if not path.exists():
            raise FileNotFoundError(f"missing CMU take {path}")
        # the cgspeed conversion starts with one rest-pose frame: skip it
        pose, rate = load_bvh_h36m17(path, target_fps=fps, skip_frames=1)
        rows.append(make_row(sequence=f"cmu_{take}", source="cmu_bvh", subject="cmu_01", action=take,
                             pose_3d=pose, fps=rate, skeleton="h36m17", coordinate_frame="world"))
    climb = sorted((mocap_dir / "holosoma_climb").glob("mocap_climb_seq_*_joint_positions_*.npy"))
    if len(climb) != 4:
        raise FileNotFoundError(f"expected 4 climbing sequences in {mocap_dir / 'holosoma_climb'}, found {len(climb)}")
    for path in climb:
        seq = re.search(r"seq_(\d+)", path.name).group(1)
        pose, rate = load_climb_npy(path, source_fps=120.0, target_fps=fps)
        rows.append(make_row(sequence=f"climb_seq_{seq}", source="holosoma_climb", subject="climber",
                             action=path.stem, pose_3d=pose, fps=rate, skeleton="h36m17",
                             coordinate_frame="world"))
    return rows


def build_demo(mocap_dir, output=None, fps: float = 50.0, overwrite: bool = False, format: str = "arrow"):
    """Build the demo DatasetDict; write it to ``output`` when given. Returns the DatasetDict."""
    from datasets import DatasetDict

    rows = demo_rows(mocap_dir, fps)
    train = [r for r in rows if r["sequence"] not in DEMO_VALIDATION_SEQUENCES]
    val = [r for r in rows if r["sequence"] in DEMO_VALIDATION_SEQUENCES]
    dd = DatasetDict({"train": rows_to_dataset(train, 17), "validation": rows_to_dataset(val, 17)})
    if output is not None:
        save_dataset(dd, output, format=format, overwrite=overwrite)
    return dd
