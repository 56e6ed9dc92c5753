"""Mask sampling for masked pose modeling.

All masks are ``torch.bool`` with ``True`` = masked:
- spatial masks ``(batch, frames, joints)``: the joint's coordinates are replaced by a learned
  mask token before the frame embedding;
- temporal masks ``(batch, frames)``: the frame is dropped before the encoder and re-inserted
  as a learned token before the decoder.

Randomness comes only from the ``generator`` passed in (no global seeding), so runs are
reproducible.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from .skeleton import LIMBS, Skeleton, get_skeleton

__all__ = [
    "num_masked_frames",
    "nominal_mask_ratio",
    "exact_mask_ratio",
    "sample_spatiotemporal_mask",
    "sample_tube_mask",
    "tube_joints",
    "body_part_joints",
    "mirror_mask",
    "TUBE_PARTS_2D",
    "TUBE_PARTS_3D",
]

# Body-part tubes of the completion tasks (docs/authors_code.md section 9.1), with the sides named after the
# subject (the authors' README labels are mirrored; the index sets are theirs).
TUBE_PARTS_3D: Tuple[Tuple[str, ...], ...] = (
    ("right_leg",), ("right_arm",), ("left_arm",), ("left_leg",),
)
TUBE_PARTS_2D: Tuple[Tuple[str, ...], ...] = (
    ("right_leg", "left_leg"), ("left_arm", "right_arm"), ("right_leg", "right_arm"), ("left_leg", "left_arm"),
)


def num_masked_frames(num_frames: int, temporal_mask_ratio: float) -> int:
    """Frames dropped per window: ``int(F * ratio)`` exactly as the authors (145 of 243 at 0.6)."""
    return int(num_frames * temporal_mask_ratio)


def nominal_mask_ratio(temporal_mask_ratio: float, spatial_mask_joints: int, num_joints: int) -> float:
    """The paper's ratio ``tmr + (1 - tmr) * smn / J`` (0.718 for 0.6, 5, 17)."""
    return temporal_mask_ratio + (1 - temporal_mask_ratio) * spatial_mask_joints / num_joints


def exact_mask_ratio(num_frames: int, num_joints: int, temporal_mask_ratio: float, spatial_mask_joints: int) -> float:
    """Fraction of (frame, joint) tokens masked by :func:`sample_spatiotemporal_mask`:
    ``(m J + (F - m) smn) / (F J)`` with ``m = int(F tmr)`` (0.7153 for 243, 17, 0.6, 5)."""
    m = num_masked_frames(num_frames, temporal_mask_ratio)
    return (m * num_joints + (num_frames - m) * spatial_mask_joints) / (num_frames * num_joints)


def _check_generator(generator):
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _random_subset_mask(rows: int, n: int, k: int, generator, device) -> torch.Tensor:
    """(rows, n) bool with exactly ``k`` True per row, uniformly without replacement."""
    if k <= 0:
        return torch.zeros(rows, n, dtype=torch.bool, device=device)
    scores = torch.rand(rows, n, generator=generator).to(device)
    idx = scores.argsort(dim=-1)[:, :k]
    mask = torch.zeros(rows, n, dtype=torch.bool, device=device)
    mask.scatter_(1, idx, True)
    return mask


def sample_spatiotemporal_mask(
    batch_size: int,
    num_frames: int,
    num_joints: int,
    temporal_mask_ratio: float,
    spatial_mask_joints: int,
    share_across_batch: bool = False,
    generator: Optional[torch.Generator] = None,
    device=None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The pre-training mask (docs/authors_code.md section 4.3).

    Every frame gets ``spatial_mask_joints`` joints chosen uniformly without replacement (the
    root may be chosen), and ``int(num_frames * temporal_mask_ratio)`` frames are dropped.

    Returns:
        spatial ``(batch, frames, joints)`` bool, temporal ``(batch, frames)`` bool. With
        ``share_across_batch`` every sample gets the same pattern (the authors' behaviour).
    """
    _check_generator(generator)
    for name, v in (("batch_size", batch_size), ("num_frames", num_frames), ("num_joints", num_joints)):
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not 0 <= spatial_mask_joints <= num_joints:
        raise ValueError(f"spatial_mask_joints must be in [0, {num_joints}], got {spatial_mask_joints}")
    if not 0.0 <= temporal_mask_ratio < 1.0:
        raise ValueError(f"temporal_mask_ratio must be in [0, 1), got {temporal_mask_ratio}")
    draws = 1 if share_across_batch else batch_size
    spatial = _random_subset_mask(draws * num_frames, num_joints, spatial_mask_joints, generator, device)
    spatial = spatial.view(draws, num_frames, num_joints)
    temporal = _random_subset_mask(draws, num_frames, num_masked_frames(num_frames, temporal_mask_ratio),
                                   generator, device)
    if share_across_batch:
        spatial = spatial.expand(batch_size, -1, -1).contiguous()
        temporal = temporal.expand(batch_size, -1).contiguous()
    return spatial, temporal


def body_part_joints(skeleton, part: str) -> List[int]:
    """Joint indices of a body part (``right_leg``, ``left_leg``, ``right_arm``, ``left_arm``)."""
    skel = get_skeleton(skeleton)
    if part not in LIMBS:
        raise ValueError(f"unknown body part {part!r}; choose one of {sorted(LIMBS)}")
    return [skel.index(name) for name in LIMBS[part]]


def tube_joints(skeleton, manner: int, modality: str) -> Optional[List[int]]:
    """Joints of tube ``manner`` for ``modality`` ``"2d"`` or ``"3d"`` (docs/authors_code.md section 9.1):
    manners 0-3 are body parts, ``d >= 4`` means ``d - 3`` random joints (returns ``None``)."""
    if modality not in ("2d", "3d"):
        raise ValueError(f"modality must be '2d' or '3d', got {modality!r}")
    table = TUBE_PARTS_2D if modality == "2d" else TUBE_PARTS_3D
    if manner < 0:
        raise ValueError(f"tube manner must be >= 0, got {manner}")
    if manner >= len(table):
        return None
    joints: List[int] = []
    for part in table[manner]:
        joints += body_part_joints(skeleton, part)
    return sorted(joints)


def sample_tube_mask(
    batch_size: int,
    num_frames: int,
    skeleton,
    manners: Sequence[int],
    modality: str,
    generator: Optional[torch.Generator] = None,
    device=None,
) -> torch.Tensor:
    """Per-sample body-part tube masks: the same joints masked in every frame.

    Each sample draws ``d`` uniformly from ``manners``; see :func:`tube_joints`.
    Returns ``(batch, frames, joints)`` bool.
    """
    _check_generator(generator)
    skel: Skeleton = get_skeleton(skeleton)
    if not manners:
        raise ValueError("manners must be a non-empty list of tube choices")
    J = skel.num_joints
    choice = torch.randint(len(manners), (batch_size,), generator=generator)
    rows = torch.zeros(batch_size, J, dtype=torch.bool)
    for b in range(batch_size):
        d = int(manners[int(choice[b])])
        joints = tube_joints(skel, d, modality)
        if joints is None:
            k = min(d - 3, J)
            joints = torch.randperm(J, generator=generator)[:k].tolist()
        rows[b, joints] = True
    return rows[:, None, :].expand(batch_size, num_frames, J).contiguous().to(device)


def mirror_mask(mask: torch.Tensor, skeleton) -> torch.Tensor:
    """Swap left and right joints of a spatial mask ``(..., joints)``, as a left/right flip of the
    pose does; use it with flip test-time augmentation so the flipped pass hides the same limb."""
    skel = get_skeleton(skeleton)
    if mask.shape[-1] != skel.num_joints:
        raise ValueError(f"mask has {mask.shape[-1]} joints, skeleton {skel.name} has {skel.num_joints}")
    perm = torch.as_tensor(skel.flip_permutation, device=mask.device)
    return mask.index_select(-1, perm)
