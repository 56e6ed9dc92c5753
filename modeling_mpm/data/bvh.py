"""BVH motion files: :func:`read_bvh` parses a Biovision Hierarchy file and :meth:`BVHMotion.joint_positions`
runs forward kinematics -> world positions ``(T, J, 3)`` of every joint and End Site. Rules:

* Rotation channels of a joint are Euler angles in degrees, **intrinsic**, in the listed order
  (``Zrotation Yrotation Xrotation`` -> ``R = Rz Ry Rx``, scipy ``from_euler("ZYX", ...)``); any subset and order.
* Position channels (usually only on the root) replace the OFFSET component of their axis.
* A joint without a CHANNELS line (or ``CHANNELS 0``) has identity rotation.
* ``End Site`` blocks become joints named ``<parent>_end`` (e.g. ``Head_end``) with no channels.
* Positions are multiplied by ``scale`` (file units -> metres); the axes are left as in the file.
* Motion lines beyond the declared ``Frames:`` count are ignored with a warning; fewer lines is an error.
* Refused: ``Frames:`` below 1, a frame time outside [1e-4, 10] s, NaN/inf and values beyond 1e6 in magnitude.

Parse errors raise ``ValueError`` naming the file and line number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["BVHJoint", "BVHMotion", "read_bvh", "parse_bvh"]

#: accepted seconds per frame (10,000 fps to 0.1 fps)
MIN_FRAME_TIME, MAX_FRAME_TIME = 1e-4, 10.0
#: largest accepted magnitude of an OFFSET or motion value (file units or degrees)
MAX_CHANNEL_VALUE = 1e6

_ROT = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}
_POS = {"xposition": 0, "yposition": 1, "zposition": 2}


@dataclass
class BVHJoint:
    """One joint of the hierarchy.

    Attributes:
        name: joint name (End Sites: ``<parent>_end``).
        parent: index of the parent joint, -1 for the root.
        offset: (3,) offset from the parent in file units.
        channels: channel names in file order (e.g. ``["Zrotation", "Yrotation", "Xrotation"]``).
        channel_start: column of the first channel in a motion line.
        is_end_site: True for End Site entries.
    """

    name: str
    parent: int
    offset: np.ndarray
    channels: List[str] = field(default_factory=list)
    channel_start: int = 0
    is_end_site: bool = False


@dataclass
class BVHMotion:
    """A parsed BVH file: hierarchy plus motion channels.

    Attributes:
        joints: joints in file (depth-first) order; parents come before children.
        motion: (T, C) float64 channel values, one row per frame.
        frame_time: seconds per frame.
    """

    joints: List[BVHJoint]
    motion: np.ndarray
    frame_time: float

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def joint_names(self) -> List[str]:
        return [j.name for j in self.joints]

    def joint_positions(self, scale: float = 1.0, include_end_sites: bool = True) -> np.ndarray:
        """Forward kinematics: (T, J, 3) float64 world positions, ``scale`` x file units, in :attr:`joint_names`
        order (End Sites dropped when ``include_end_sites=False``)."""
        T = self.num_frames
        n = len(self.joints)
        pos = np.zeros((T, n, 3))
        rot = np.zeros((T, n, 3, 3))
        for i, joint in enumerate(self.joints):
            translation = np.broadcast_to(joint.offset, (T, 3)).copy()
            axes, angle_cols = "", []
            for k, ch in enumerate(joint.channels):
                key = ch.lower()
                col = joint.channel_start + k
                if key in _POS:
                    translation[:, _POS[key]] = self.motion[:, col]
                else:
                    axes += _ROT[key]
                    angle_cols.append(col)
            if axes:
                local = Rotation.from_euler(axes, self.motion[:, angle_cols], degrees=True).as_matrix()
            else:
                local = np.broadcast_to(np.eye(3), (T, 3, 3))
            if joint.parent < 0:
                pos[:, i] = translation
                rot[:, i] = local
            else:
                pr = rot[:, joint.parent]
                pos[:, i] = pos[:, joint.parent] + np.einsum("tij,tj->ti", pr, translation)
                rot[:, i] = pr @ local
        pos *= scale
        if not include_end_sites:
            keep = [i for i, j in enumerate(self.joints) if not j.is_end_site]
            pos = pos[:, keep]
        return pos

    def named_positions(self, names: Sequence[str], scale: float = 1.0) -> np.ndarray:
        """(T, len(names), 3) positions of the named joints (End Sites as ``<parent>_end``)."""
        index = {n: i for i, n in enumerate(self.joint_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ValueError(f"BVH has no joints {missing}; joints are {self.joint_names}")
        return self.joint_positions(scale)[:, [index[n] for n in names]]


class _Lines:
    """The lines of a BVH text with its name, for error messages that name file and line."""

    def __init__(self, text: str, source: str):
        self.lines, self.source = text.splitlines(), source

    def err(self, lineno: int, msg: str) -> ValueError:
        return ValueError(f"{self.source}, line {lineno}: {msg}")

    def next_content(self, j: int) -> int:
        """Index of the first non-blank line at or after ``j`` (``len(lines)`` when none)."""
        while j < len(self.lines) and not self.lines[j].strip():
            j += 1
        return j

    def header(self, i: int, label: str, cast, expected: str, bad: str):
        """``(value, index)`` of the ``label: <value>`` line at or after ``i``."""
        i = self.next_content(i)
        if i >= len(self.lines) or not self.lines[i].strip().lower().startswith(label + ":"):
            raise self.err(i + 1, expected)
        try:
            return cast(self.lines[i].split(":", 1)[1]), i
        except ValueError:
            raise self.err(i + 1, f"{bad} {self.lines[i].strip()!r}") from None


def _parse_offset(src: _Lines, lineno: int, line: str) -> np.ndarray:
    try:
        vals = [float(v) for v in line.split()[1:]]
    except ValueError:
        raise src.err(lineno, f"OFFSET values must be numbers: {line.strip()!r}") from None
    if len(vals) != 3:
        raise src.err(lineno, f"OFFSET needs 3 numbers, got {len(vals)}")
    if not all(abs(v) <= MAX_CHANNEL_VALUE for v in vals):  # also false for nan
        raise src.err(lineno, f"OFFSET values must be finite and at most {MAX_CHANNEL_VALUE:g} in magnitude")
    return np.array(vals)


def _parse_channels(src: _Lines, lineno: int, parts: List[str], joint: BVHJoint) -> List[str]:
    if joint.is_end_site:
        raise src.err(lineno, "End Site cannot have CHANNELS")
    try:
        count = int(parts[1])
    except (IndexError, ValueError):
        raise src.err(lineno, "CHANNELS needs a count") from None
    names = parts[2:]
    if len(names) != count:
        raise src.err(lineno, f"CHANNELS declares {count} channels but lists {len(names)}")
    for ch in names:
        if ch.lower() not in _ROT and ch.lower() not in _POS:
            raise src.err(lineno, f"unknown channel {ch!r}")
    if len({c.lower() for c in names}) != len(names):
        raise src.err(lineno, f"repeated channel in {names}")
    return list(names)


def _parse_hierarchy(src: _Lines):
    """``(joints, channel count, index of the line after MOTION)``."""
    i = src.next_content(0)
    if i >= len(src.lines) or src.lines[i].strip().upper() != "HIERARCHY":
        raise src.err(i + 1, "expected 'HIERARCHY' at the start of a BVH file")
    joints: List[BVHJoint] = []
    stack: List[int] = []
    n_channels, pending = 0, None  # pending: the joint waiting for its '{'
    while True:
        i = src.next_content(i + 1)
        if i >= len(src.lines):
            raise src.err(i, "unexpected end of file inside HIERARCHY (missing MOTION section)")
        parts = src.lines[i].split()
        key, lineno = parts[0].upper(), i + 1
        if key == "MOTION":
            if stack:
                raise src.err(lineno, f"MOTION before all joints were closed ({len(stack)} '{{' open)")
            break
        if key in ("OFFSET", "CHANNELS", "END") and not stack:
            raise src.err(lineno, {"OFFSET": "OFFSET outside of a joint", "CHANNELS": "CHANNELS outside of a joint",
                                   "END": "End Site outside of a joint"}[key])
        if key in ("ROOT", "JOINT"):
            if len(parts) < 2:
                raise src.err(lineno, f"{parts[0]} without a name")
            if (key == "ROOT") == bool(stack):
                raise src.err(lineno, "ROOT inside another joint" if stack else "JOINT outside of ROOT")
            joints.append(BVHJoint(" ".join(parts[1:]), stack[-1] if stack else -1, np.zeros(3)))
            pending = len(joints) - 1
        elif key == "END":
            joints.append(BVHJoint(joints[stack[-1]].name + "_end", stack[-1], np.zeros(3), is_end_site=True))
            pending = len(joints) - 1
        elif key == "{":
            if pending is None:
                raise src.err(lineno, "'{' without a ROOT/JOINT/End Site before it")
            stack.append(pending)
            pending = None
        elif key == "}":
            if not stack:
                raise src.err(lineno, "unbalanced '}'")
            stack.pop()
        elif key == "OFFSET":
            joints[stack[-1]].offset = _parse_offset(src, lineno, src.lines[i])
        elif key == "CHANNELS":
            joint = joints[stack[-1]]
            joint.channels, joint.channel_start = _parse_channels(src, lineno, parts, joint), n_channels
            n_channels += len(joint.channels)
        else:
            raise src.err(lineno, f"unexpected keyword {parts[0]!r} in HIERARCHY")
    if not joints:
        raise src.err(i + 1, "no joints in HIERARCHY")
    return joints, n_channels, i + 1


def _parse_motion(src: _Lines, first: int, n_frames: int, n_channels: int) -> np.ndarray:
    """``(n_frames, n_channels)`` channel values from the lines at and after ``first``."""
    data_lines = [(k + 1, src.lines[k]) for k in range(first, len(src.lines)) if src.lines[k].strip()]
    if len(data_lines) < n_frames:
        raise ValueError(f"{src.source}: declares {n_frames} frames but has only {len(data_lines)} motion lines")
    if len(data_lines) > n_frames:
        warnings.warn(f"{src.source}: {len(data_lines) - n_frames} motion line(s) beyond the declared "
                      f"{n_frames} frames ignored (first at line {data_lines[n_frames][0]})")
        data_lines = data_lines[:n_frames]
    motion = np.empty((n_frames, n_channels))
    for t, (lineno, line) in enumerate(data_lines):
        parts = line.split()
        if len(parts) != n_channels:
            raise src.err(lineno, f"motion line has {len(parts)} values, the hierarchy has {n_channels} channels")
        try:
            motion[t] = [float(v) for v in parts]
        except ValueError:
            raise src.err(lineno, "motion line contains a non-number") from None
        if not np.isfinite(motion[t]).all():
            raise src.err(lineno, "motion line holds a value that is not finite (nan or inf)")
        if np.abs(motion[t]).max(initial=0.0) > MAX_CHANNEL_VALUE:
            raise src.err(lineno, f"motion line holds a value that exceeds {MAX_CHANNEL_VALUE:g} in magnitude")
    return motion


def parse_bvh(text: str, source: str = "<string>") -> BVHMotion:
    """Parse BVH ``text``; ``source`` names the file in error messages."""
    src = _Lines(text, source)
    joints, n_channels, i = _parse_hierarchy(src)
    n_frames, i = src.header(i, "frames", int, "expected 'Frames: <count>' after MOTION", "bad frame count")
    frame_time, i = src.header(i + 1, "frame time", float, "expected 'Frame Time: <seconds>' after Frames",
                               "bad frame time")
    if n_frames <= 0:
        raise src.err(i, f"frame count must be positive, got {n_frames}")
    if not MIN_FRAME_TIME <= frame_time <= MAX_FRAME_TIME:
        raise src.err(i + 1, f"frame time {frame_time} s is not in [{MIN_FRAME_TIME}, {MAX_FRAME_TIME}] "
                             f"({1 / MAX_FRAME_TIME:g} to {1 / MIN_FRAME_TIME:g} frames per second)")
    return BVHMotion(joints=joints, motion=_parse_motion(src, i + 1, n_frames, n_channels), frame_time=frame_time)


def read_bvh(path) -> BVHMotion:
    """Read and parse a BVH file (see module docstring for the conventions)."""
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        return parse_bvh(fh.read(), source=str(path))
