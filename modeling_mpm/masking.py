"""Every mask sampler of the package, and left/right mirroring of poses and masks.

Masks are ``torch.bool``, ``True`` = masked: spatial ``(batch, frames, joints)`` (the joint gets a learned mask
token before the frame embedding), temporal ``(batch, frames)`` (the frame is dropped before the encoder and
re-inserted as a learned token before the decoder). :func:`sample_masks` turns a model config into masks, for
the model (``config.mask_mode``, when trained without masks) and the trainer (the mode its task fixes).
Randomness comes only from the ``generator`` passed in.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from .skeleton import LIMBS, Skeleton, get_skeleton

__all__ = ["sample_masks", "num_masked_frames", "nominal_mask_ratio", "exact_mask_ratio", "sample_spatiotemporal_mask",
           "sample_tube_mask", "tube_joints", "tube_mask", "random_joint_mask", "random_limb_mask", "limb_joints",
           "occlusion_mask", "body_part_joints", "mirror_mask", "flip_pose", "TUBE_PARTS_2D", "TUBE_PARTS_3D"]

# Body-part tubes of the completion tasks (docs/authors_code.md section 9.1), sides named after the subject (the
# authors' README labels are mirrored; the index sets are theirs).
TUBE_PARTS_3D: Tuple[Tuple[str, ...], ...] = (("right_leg",), ("right_arm",), ("left_arm",), ("left_leg",))
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


def _random_subset_mask(rows: int, n: int, k: int, generator, device=None, allowed=None) -> torch.Tensor:
    """(rows, n) bool with exactly ``k`` True per row, uniformly without replacement among ``allowed`` columns."""
    if k <= 0:
        return torch.zeros(rows, n, dtype=torch.bool, device=device)
    cols = torch.arange(n) if allowed is None else torch.as_tensor(list(allowed), dtype=torch.long)
    scores = torch.rand(rows, len(cols), generator=generator).to(device)
    idx = cols.to(scores.device)[scores.argsort(dim=-1)[:, :k]]
    mask = torch.zeros(rows, n, dtype=torch.bool, device=device)
    mask.scatter_(1, idx, True)
    return mask


def sample_spatiotemporal_mask(batch_size: int, num_frames: int, num_joints: int, temporal_mask_ratio: float,
                               spatial_mask_joints: int, share_across_batch: bool = False,
                               generator: Optional[torch.Generator] = None,
                               device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """The pre-training mask (docs/authors_code.md section 4.3): ``spatial_mask_joints`` joints per frame chosen
    uniformly without replacement (root included), and ``int(num_frames * temporal_mask_ratio)`` frames dropped.

    Returns spatial ``(batch, frames, joints)`` and temporal ``(batch, frames)`` bool; with ``share_across_batch``
    every sample gets the same pattern (the authors' behaviour).
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
    m = num_masked_frames(num_frames, temporal_mask_ratio)
    temporal = _random_subset_mask(draws, num_frames, m, generator, device)
    if share_across_batch:
        spatial = spatial.expand(batch_size, -1, -1).contiguous()
        temporal = temporal.expand(batch_size, -1).contiguous()
    return spatial, temporal


def sample_masks(config, batch_size: int, modality: str, generator: Optional[torch.Generator] = None,
                 device=None, mode: Optional[str] = None, share: Optional[bool] = None):
    """Masks of one modality (``"2d"`` / ``"3d"``) for ``batch_size`` windows of a model ``config``:
    ``(spatial (B, F, J) or None, temporal (B, F) or None)``. ``mode`` (default ``config.mask_mode``): ``"random"``,
    ``"tube"`` (``config.tube_manners_2d`` / ``_3d``, no temporal mask) or ``"none"``; ``share`` (default
    ``config.share_mask_across_batch``): one pattern for the whole batch."""
    mode = config.mask_mode if mode is None else mode
    share = config.share_mask_across_batch if share is None else share
    if mode == "none":
        return None, None
    if mode == "tube":
        manners = config.tube_manners_2d if modality == "2d" else config.tube_manners_3d
        tube = sample_tube_mask(1 if share else batch_size, config.num_frames, config.get_skeleton(), manners, modality,
                                generator, device)
        return tube.expand(batch_size, -1, -1), None
    return sample_spatiotemporal_mask(batch_size, config.num_frames, config.num_joints, config.temporal_mask_ratio,
                                      config.spatial_mask_joints, share, generator, device)


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


def sample_tube_mask(batch_size: int, num_frames: int, skeleton, manners: Sequence[int], modality: str,
                     generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
    """``(batch, frames, joints)`` bool body-part tube masks (the same joints in every frame); each sample draws
    ``d`` uniformly from ``manners`` (see :func:`tube_joints`)."""
    _check_generator(generator)
    if not manners:
        raise ValueError("manners must be a non-empty list of tube choices")
    choice = torch.randint(len(manners), (batch_size,), generator=generator)
    return tube_mask([int(manners[int(c)]) for c in choice], num_frames, skeleton, modality, generator, device)


def tube_mask(manners: Sequence[int], num_frames: int, skeleton, modality: str,
              generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
    """``(len(manners), frames, joints)`` bool: window ``b`` hides tube ``manners[b]`` in every frame
    (random joints drawn per window for ``d >= 4``)."""
    skel: Skeleton = get_skeleton(skeleton)
    J = skel.num_joints
    rows = torch.zeros(len(manners), J, dtype=torch.bool)
    for b, d in enumerate(manners):
        joints = tube_joints(skel, int(d), modality)
        if joints is None:
            joints = torch.randperm(J, generator=generator)[:min(int(d) - 3, J)].tolist()
        rows[b, joints] = True
    return rows[:, None, :].expand(len(manners), num_frames, J).contiguous().to(device)


def random_joint_mask(batch: int, frames: int, joints: int, k: int, generator: torch.Generator,
                      exclude: Sequence[int] = ()) -> torch.Tensor:
    """``(B, F, J)`` bool with ``k`` random joints missing in every frame (never those in ``exclude``)."""
    allowed = [j for j in range(joints) if j not in set(exclude)]
    if not 0 < k <= len(allowed):
        raise ValueError(f"cannot hide {k} of the {len(allowed)} maskable joints")
    return _random_subset_mask(batch * frames, joints, k, generator, allowed=allowed).view(batch, frames, joints)


def limb_joints(skeleton) -> List[List[int]]:
    """The four limbs (right/left arm, right/left leg; 3 joints each) of a skeleton name, Skeleton or config."""
    skeleton = skeleton.get_skeleton() if hasattr(skeleton, "get_skeleton") else skeleton
    return [body_part_joints(skeleton, part) for part in ("right_arm", "left_arm", "right_leg", "left_leg")]


def _limb_rows(limbs: Sequence[Sequence[int]], pick: torch.Tensor, num_joints: int) -> torch.Tensor:
    """``(len(pick), J)`` bool: row ``b`` hides the joints of ``limbs[pick[b]]``."""
    table = torch.zeros(len(limbs), num_joints, dtype=torch.bool)
    for i, joints in enumerate(limbs):
        table[i, list(joints)] = True
    return table[pick]


def random_limb_mask(batch: int, frames: int, skeleton, generator: torch.Generator) -> torch.Tensor:
    """``(B, F, J)`` bool hiding one random limb (right/left arm/leg) per window in all frames."""
    limbs = limb_joints(skeleton)
    pick = torch.randint(len(limbs), (batch,), generator=generator)
    return _limb_rows(limbs, pick, get_skeleton(skeleton).num_joints)[:, None, :].expand(-1, frames, -1).contiguous()


def occlusion_mask(batch_size: int, num_frames: int, num_joints: int, max_joints: int,
                   prob: float, generator: torch.Generator, *, limb_prob: float = 0.0,
                   limbs: Sequence[Sequence[int]] = ()) -> Optional[torch.Tensor]:
    """Random missing joints for occlusion-robust lifting: each window is occluded with probability ``prob`` and
    then hides ``k ~ U{1..max_joints}`` random joints per frame (a new set each frame) or, with probability
    ``limb_prob``, one of ``limbs`` (joint index lists, e.g. :func:`limb_joints`) in all frames. Returns
    ``(B, F, J)`` bool, or None when ``prob == 0``. ``limb_prob == 0`` leaves the random stream unchanged."""
    if prob <= 0 or max_joints <= 0:
        return None
    hit = torch.rand(batch_size, generator=generator) < prob
    k = torch.randint(1, max_joints + 1, (batch_size,), generator=generator)
    scores = torch.rand(batch_size, num_frames, num_joints, generator=generator)
    mask = scores.argsort(-1).argsort(-1) < k[:, None, None]
    if limb_prob > 0:
        if not limbs:
            raise ValueError("occlusion limb_prob > 0 needs the limbs (joint index lists) to hide")
        as_limb = torch.rand(batch_size, generator=generator) < limb_prob
        pick = torch.randint(len(limbs), (batch_size,), generator=generator)
        limb_mask = _limb_rows(limbs, pick, num_joints)[:, None, :].expand_as(mask)
        mask = torch.where(as_limb[:, None, None], limb_mask, mask)
    return mask & hit[:, None, None]


def flip_pose(pose: torch.Tensor, skeleton) -> torch.Tensor:
    """Mirror poses ``(..., J, C)`` left/right: ``x -> -x`` and left/right joints swapped."""
    sign = torch.ones(pose.shape[-1], dtype=pose.dtype, device=pose.device)
    sign[0] = -1
    return pose.index_select(-2, _flip_index(skeleton, pose.shape[-2], pose.device)) * sign


def mirror_mask(mask, skeleton):
    """Swap left and right joints of a spatial mask ``(..., joints)`` (torch or NumPy), as :func:`flip_pose`."""
    if isinstance(mask, torch.Tensor):
        return mask.index_select(-1, _flip_index(skeleton, mask.shape[-1], mask.device))
    return mask[..., _flip_index(skeleton, mask.shape[-1], None).numpy()]


def _flip_index(skeleton, joints: int, device) -> torch.Tensor:
    skel = get_skeleton(skeleton)
    if joints != skel.num_joints:
        raise ValueError(f"{joints} joints given, skeleton {skel.name} has {skel.num_joints}")
    return torch.as_tensor(skel.flip_permutation, device=device)
