"""The two OMOMO clips that holosoma-retargeting 0.1.0 ships, as data set rows (extra training motion for the
general lifter: people carrying and setting down a large box, two bodies other than the embedded ones).

    pip download --no-deps holosoma-retargeting==0.1.0 -d /tmp/holosoma      # explicit fetch, once
    python train/general_lifter.py --omomo /tmp/holosoma/holosoma_retargeting-0.1.0-py3-none-any.whl ...

Source: ``holosoma_retargeting/demo_data/OMOMO_new/*.pt`` of the wheel (Apache-2.0 package; the clips are OMOMO
motion as processed by InterMimic, see DATA_NOTES.md), read by :func:`modeling_mpm.data.mocap.load_intermimic_pt`:
H36M-17, metres, world frame Z up, 50 Hz. ``source`` may be the wheel or a folder holding the ``.pt`` files.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import List

from modeling_mpm.data.io import make_row
from modeling_mpm.data.mocap import load_intermimic_pt

__all__ = ["OMOMO_WHEEL", "OMOMO_MEMBER_DIR", "omomo_rows"]

OMOMO_WHEEL = "holosoma_retargeting-0.1.0-py3-none-any.whl"
OMOMO_MEMBER_DIR = "holosoma_retargeting/demo_data/OMOMO_new/"


def _clips(source: Path):
    """``[(stem, readable)]`` of the ``.pt`` clips in a wheel or a folder, sorted by name."""
    if source.is_dir():
        return [(p.stem, p) for p in sorted(source.glob("*.pt"))]
    if not zipfile.is_zipfile(source):
        raise ValueError(f"{source}: neither a folder of .pt clips nor a wheel (zip) holding {OMOMO_MEMBER_DIR}")
    with zipfile.ZipFile(source) as z:
        names = sorted(n for n in z.namelist() if n.startswith(OMOMO_MEMBER_DIR) and n.endswith(".pt"))
        clips = []
        for n in names:
            data = io.BytesIO(z.read(n))
            data.name = f"{source}:{n}"          # for error messages
            clips.append((os.path.splitext(os.path.basename(n))[0], data))
        return clips


def omomo_rows(source, fps: float = 50.0) -> List[dict]:
    """One world-frame row per OMOMO clip in ``source`` (wheel or folder), named ``omomo_<clip>``, subject
    ``omomo_<subN>``; ValueError when ``source`` holds none."""
    source = Path(source)
    if not source.exists():
        raise ValueError(f"{source} does not exist; fetch it with `pip download --no-deps holosoma-retargeting==0.1.0`")
    rows = []
    for stem, readable in _clips(source):
        pose, rate = load_intermimic_pt(readable, target_fps=fps)
        rows.append(make_row(sequence=f"omomo_{stem}", source="omomo_intermimic", subject=f"omomo_{stem.split('_')[0]}",
                             action=stem, pose_3d=pose, fps=rate, skeleton="h36m17", coordinate_frame="world"))
    if not rows:
        raise ValueError(f"{source} holds no OMOMO .pt clips (expected {OMOMO_MEMBER_DIR}*.pt in the wheel)")
    return rows
