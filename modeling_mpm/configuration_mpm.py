"""Configuration of the MPM model family (masked 2D-3D pose modeling)."""

from __future__ import annotations

import sys
from typing import List, Optional, Sequence

from transformers import PretrainedConfig

from .skeleton import SKELETONS, Skeleton, get_skeleton

_MASK_MODES = ("random", "tube", "none")
_PAPER = dict(num_joints=17, num_frames=243, num_layers=4, hidden_size=256, intermediate_size=512, skeleton="h36m17")
#: what each preset sets (a run's ``model.preset`` on an ``init_from`` checkpoint checks these too)
_PRESETS = {
    "h36m_17": dict(_PAPER, temporal_mask_ratio=0.6, spatial_mask_joints=5),
    "h36m_16": dict(_PAPER, num_joints=16, num_layers=3, skeleton="h36m16", temporal_mask_ratio=0.6,
                    spatial_mask_joints=5),
    "completion_27": dict(_PAPER, num_frames=27, num_layers=3, decoder_layers=2, mask_mode="tube",
                          temporal_mask_ratio=0.0),
}
_LOSS_ON = ("all", "masked")
_DROPPED_FRAMES_INPUT = ("coordinates", "mask_token")


class MPMConfig(PretrainedConfig):
    r"""Configuration for :class:`MPMModel`, :class:`MPMForMaskedPoseModeling` and :class:`MPMForPoseLifting`.

    Defaults: the paper's Human3.6M set-up (17 joints, 243 frames, 4 layers, width 256); presets: :meth:`h36m_17`,
    :meth:`h36m_16`, :meth:`completion_27`.

    Args:
        num_joints: joints per frame ``J``; must match ``skeleton``.
        num_frames: frames per input window ``F`` (odd, so that a centre frame exists).
        hidden_size: width ``C`` of the temporal transformer (the authors' ``channel``).
        embedding_size: width of the per-frame joint embedding and spatial MLP (authors: ``2 C``).
        intermediate_size: feed-forward width ``H`` of every transformer layer (``d_hid``).
        num_layers: depth of the shared temporal transformer (authors' ``layers``).
        num_attention_heads: heads of every attention layer (8 in the paper).
        dropout: dropout in the transformers (attention weights, feed-forward, residual).
        mlp_dropout: dropout in the joint embedding and spatial MLP of the pre-training model.
        lifter_mlp_dropout: the same for :class:`MPMForPoseLifting` (0.2 in the authors' code).
        decoder_layers: depth of each 2D/3D decoder of the masked model (1 pre-training, 2 completion).
        reduce_strides: strides of the lifter's strided reduction; they must reduce ``num_frames`` to one frame
            (e.g. ``[3, 3, 3, 3, 3]`` for 243).
        temporal_mask_ratio: fraction of frames dropped in random masking (``int(F * ratio)``).
        spatial_mask_joints: joints per frame whose coordinates are replaced by the mask token.
        mask_mode: masks sampled in training when none are passed: ``"random"`` (spatio-temporal, pre-training),
            ``"tube"`` (body-part tubes, completion) or ``"none"``.
        tube_manners_2d / tube_manners_3d: body-part tube choices (docs/authors_code.md section 9.1; 0..3 body
            parts, ``d >= 4`` means ``d - 3`` random joints).
        share_mask_across_batch: one mask for the whole batch as the authors (default: one per sample).
        reconstruction_loss_on: ``"all"`` tokens (authors) or only ``"masked"`` ones.
        dropped_frames_input: what temporally dropped frames carry into the embedding and spatial MLP before
            removal: ``"coordinates"`` (authors; non-finite values still get the mask token) or ``"mask_token"``
            (skews BatchNorm running statistics: eval reconstruction without masks degrades, bench/RESULTS.md).
        loss_weight_2d / loss_weight_3d / loss_weight_lift: weights of the masked 2D, masked 3D and 2D->3D
            lifting losses (authors 5 : 2, lifting 2 in the occluded-2D task).
        lift_center_loss_weight / lift_all_frames_loss_weight: the lifter's centre / all-frames loss weights (1 : 1).
        legacy_layer_norm: the authors' LayerNorm (unbiased std, ``eps`` added to the std), needed for parity with
            official checkpoints; ``False`` uses ``nn.LayerNorm``.
        layer_norm_eps: epsilon of every LayerNorm.
        embedding_init_std: std of the normal init of position embeddings and mask tokens (authors: 1).
        use_refine: add the post-refinement module to the lifter (docs/authors_code.md section 6.5).
        zero_root_output: set the root joint of every 3D output to 0. The authors' heads leave it free and zero it
            in evaluation; converted official checkpoints set ``False`` to reproduce their raw outputs. Losses
            always see the raw root output.
        skeleton: a skeleton name (``"h36m17"``...), a :class:`Skeleton` or its dict; stored by name when built-in.
        refine_hidden_size: width of the post-refinement MLP (authors: 1024).
        mask_token_2d_trained: ``False`` marks a lifter whose 2D mask token was never trained (a converted official
            lifter; missing joints then warn); a lift run with ``occlusion_prob > 0`` sets it to ``True``.
    """

    model_type = "mpm"

    def __init__(
        self,
        num_joints: int = 17,
        num_frames: int = 243,
        hidden_size: int = 256,
        embedding_size: Optional[int] = None,
        intermediate_size: int = 512,
        num_layers: int = 4,
        num_attention_heads: int = 8,
        dropout: float = 0.1,
        mlp_dropout: float = 0.1,
        lifter_mlp_dropout: float = 0.2,
        decoder_layers: int = 1,
        reduce_strides: Optional[Sequence[int]] = None,
        temporal_mask_ratio: float = 0.6,
        spatial_mask_joints: int = 5,
        mask_mode: str = "random",
        tube_manners_2d: Sequence[int] = (0, 1, 2, 3, 9),
        tube_manners_3d: Sequence[int] = (0, 1, 2, 3, 6),
        share_mask_across_batch: bool = False,
        reconstruction_loss_on: str = "all",
        dropped_frames_input: str = "coordinates",
        loss_weight_2d: float = 5.0,
        loss_weight_3d: float = 2.0,
        loss_weight_lift: float = 2.0,
        lift_center_loss_weight: float = 1.0,
        lift_all_frames_loss_weight: float = 1.0,
        legacy_layer_norm: bool = True,
        layer_norm_eps: float = 1e-6,
        embedding_init_std: float = 1.0,
        use_refine: bool = False,
        zero_root_output: bool = True,
        skeleton="h36m17",
        refine_hidden_size: int = 1024,
        mask_token_2d_trained: bool = True,
        **kwargs,
    ):
        # every argument but kwargs is a field, set in signature order
        fields = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        _check_types_first(fields, kwargs)  # the derived defaults below compute with these values
        if embedding_size is None:
            fields["embedding_size"] = 2 * hidden_size
        if reduce_strides is None:
            fields["reduce_strides"] = default_reduce_strides(num_frames)
        for name in ("reduce_strides", "tube_manners_2d", "tube_manners_3d"):
            fields[name] = [int(v) for v in fields[name]]
        for name, value in fields.items():
            setattr(self, name, value)
        super().__init__(**kwargs)
        if self.architectures is None:  # transformers cannot iterate None (AutoModel.from_config -> MPMModel)
            self.architectures = []
        self.validate_mpm()

    def validate_mpm(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad value."""
        for name in ("num_joints", "num_frames", "hidden_size", "embedding_size", "intermediate_size", "num_layers",
                     "num_attention_heads", "decoder_layers", "refine_hidden_size"):
            _check_int(name, getattr(self, name), minimum=1)
        if self.num_frames % 2 != 1:
            raise ValueError(f"MPMConfig.num_frames must be odd so that windows have a centre frame, "
                             f"got {self.num_frames}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(f"MPMConfig.hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")
        for name in ("dropout", "mlp_dropout", "lifter_mlp_dropout"):
            v = getattr(self, name)
            if not _is_number(v) or not 0.0 <= v < 1.0:
                raise ValueError(f"MPMConfig.{name} must be in [0, 1), got {v!r}")
        if not _is_number(self.temporal_mask_ratio) or not 0.0 <= self.temporal_mask_ratio < 1.0:
            raise ValueError(f"MPMConfig.temporal_mask_ratio must be in [0, 1) (at least one frame must stay visible), "
                             f"got {self.temporal_mask_ratio!r}")
        if isinstance(self.spatial_mask_joints, bool) or not isinstance(self.spatial_mask_joints, int) \
                or not 0 <= self.spatial_mask_joints <= self.num_joints:
            raise ValueError(f"MPMConfig.spatial_mask_joints must be an int in [0, num_joints={self.num_joints}], "
                             f"got {self.spatial_mask_joints!r}")
        if self.mask_mode not in _MASK_MODES:
            raise ValueError(f"MPMConfig.mask_mode must be one of {_MASK_MODES}, got {self.mask_mode!r}")
        if self.reconstruction_loss_on not in _LOSS_ON:
            raise ValueError(f"MPMConfig.reconstruction_loss_on must be one of {_LOSS_ON}, "
                             f"got {self.reconstruction_loss_on!r}")
        if self.dropped_frames_input not in _DROPPED_FRAMES_INPUT:
            raise ValueError(f"MPMConfig.dropped_frames_input must be one of {_DROPPED_FRAMES_INPUT}, "
                             f"got {self.dropped_frames_input!r}")
        for name in ("reduce_strides", "tube_manners_2d", "tube_manners_3d"):
            _check_int_list(name, getattr(self, name))
        if not self.reduce_strides or any(s <= 0 for s in self.reduce_strides):
            raise ValueError(f"MPMConfig.reduce_strides must be positive ints, got {self.reduce_strides}")
        if reduced_length(self.num_frames, self.reduce_strides) != 1:
            raise ValueError(f"MPMConfig.reduce_strides {self.reduce_strides} reduce {self.num_frames} frames to "
                             f"{reduced_length(self.num_frames, self.reduce_strides)}, not 1; pick strides whose "
                             f"product is about num_frames (e.g. {default_reduce_strides(self.num_frames)})")
        skel = self.get_skeleton()
        if skel.num_joints != self.num_joints:
            raise ValueError(f"MPMConfig.num_joints={self.num_joints} but skeleton {skel.name!r} "
                             f"has {skel.num_joints} joints")
        for name in ("tube_manners_2d", "tube_manners_3d"):
            if any(d < 0 for d in getattr(self, name)):
                raise ValueError(f"MPMConfig.{name} must hold non-negative ints, got {getattr(self, name)}")
        for name in ("loss_weight_2d", "loss_weight_3d", "loss_weight_lift", "lift_center_loss_weight",
                     "lift_all_frames_loss_weight"):
            v = getattr(self, name)
            if not _is_number(v) or not 0 <= v < float("inf"):
                raise ValueError(f"MPMConfig.{name} must be a finite number >= 0, got {v!r}")
        for name in ("layer_norm_eps", "embedding_init_std"):
            v = getattr(self, name)
            if not _is_number(v) or not 0 < v < float("inf"):
                raise ValueError(f"MPMConfig.{name} must be a finite number > 0, got {v!r}")
        for name in ("share_mask_across_batch", "legacy_layer_norm", "use_refine", "zero_root_output",
                     "mask_token_2d_trained"):
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise TypeError(f"MPMConfig.{name} must be true or false, got {type(v).__name__} ({v!r})")

    @property
    def custom_pipelines(self):
        """The saved ``custom_pipelines`` (pipeline code shipped for remote use), without the tasks this package
        serves once its pipeline module is imported (else ``pipeline()`` would insist on ``trust_remote_code``).
        ``to_dict`` still saves them all."""
        try:
            stored = self.__dict__["custom_pipelines"]
        except KeyError:
            raise AttributeError("custom_pipelines") from None
        if "modeling_mpm.pipeline_mpm" not in sys.modules or not isinstance(stored, dict):
            return stored  # (importing that module registers both tasks)
        return {task: info for task, info in stored.items() if task not in _PACKAGE_PIPELINE_TASKS}

    @custom_pipelines.setter
    def custom_pipelines(self, value):
        self.__dict__["custom_pipelines"] = value

    @property
    def skeleton(self):
        """The skeleton as saved: a built-in one's name, else its dict (:meth:`Skeleton.to_dict`)."""
        return self.__dict__["skeleton"]

    @skeleton.setter
    def skeleton(self, value):
        skel = get_skeleton(value)  # resolved once here, not on every forward
        builtin = SKELETONS.get(skel.name) == skel
        self.__dict__["_skeleton"] = SKELETONS[skel.name] if builtin else skel
        self.__dict__["skeleton"] = skel.name if builtin else skel.to_dict()

    def get_skeleton(self) -> Skeleton:
        """The resolved :class:`Skeleton`."""
        return self.__dict__["_skeleton"]

    def to_dict(self):
        out = super().to_dict()
        out.pop("_skeleton", None)
        return out

    @property
    def center_frame(self) -> int:
        """Index of the centre frame of a window (``(F - 1) // 2``)."""
        return (self.num_frames - 1) // 2

    @classmethod
    def h36m_17(cls, **kwargs) -> "MPMConfig":
        """Paper set-up for Human3.6M: 17 joints, 243 frames, 4 layers, width 256."""
        return cls(**{**_PRESETS["h36m_17"], **kwargs})

    @classmethod
    def h36m_16(cls, **kwargs) -> "MPMConfig":
        """Paper set-up for multi-dataset pre-training / MPI-INF-3DHP: 16 joints, 243 frames, 3 layers."""
        return cls(**{**_PRESETS["h36m_16"], **kwargs})

    @classmethod
    def completion_27(cls, **kwargs) -> "MPMConfig":
        """Completion set-up: 17 joints, 27 frames, 3 layers, 2-layer decoders, tube masks, no temporal masking."""
        return cls(**{**_PRESETS["completion_27"], **kwargs})


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_types_first(fields: dict, kwargs: dict) -> None:
    """The types :meth:`MPMConfig.__init__` computes with before :meth:`MPMConfig.validate_mpm` runs."""
    for name in ("num_joints", "num_frames", "hidden_size"):
        _check_int(name, fields[name], minimum=1)
    if fields["embedding_size"] is not None:
        _check_int("embedding_size", fields["embedding_size"], minimum=1)
    for name in ("reduce_strides", "tube_manners_2d", "tube_manners_3d"):
        if fields[name] is not None or name != "reduce_strides":
            _check_int_list(name, fields[name])
    for key in ("dtype", "torch_dtype"):
        if key in kwargs:
            _check_dtype(key, kwargs[key])


def _check_int(name: str, v, minimum: int = 0) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"MPMConfig.{name} must be an int, got {type(v).__name__} ({v!r})")
    if v < minimum:
        raise ValueError(f"MPMConfig.{name} must be > {minimum - 1}, got {v}")


def _check_int_list(name: str, v) -> None:
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or \
            any(isinstance(d, bool) or not isinstance(d, int) for d in v):
        raise TypeError(f"MPMConfig.{name} must be a list of ints, got {v!r}")


_DTYPE_NAMES = ("float32", "float16", "bfloat16", "float64", "float", "half", "double", "auto")


def _check_dtype(key: str, v) -> None:
    """``dtype`` / ``torch_dtype``: None, a torch floating dtype or its name (what transformers
    resolves with ``getattr(torch, name)``)."""
    if v is None:
        return
    if isinstance(v, str):
        if v in _DTYPE_NAMES:
            return
    else:
        try:
            import torch

            if isinstance(v, torch.dtype) and v.is_floating_point:
                return
        except ImportError:  # pragma: no cover
            pass
    raise ValueError(f"MPMConfig.{key} must be one of {list(_DTYPE_NAMES)} (or null), got {v!r}")


#: the tasks the installed package's pipeline module registers when it is imported
_PACKAGE_PIPELINE_TASKS = ("pose-lifting", "pose-completion")


def reduced_length(num_frames: int, strides: Sequence[int]) -> int:
    """Frames left after the strided reduction (Conv1d k=3, pad=1 per stride)."""
    n = num_frames
    for s in strides:
        n = (n + 2 - 3) // s + 1
    return n


def default_reduce_strides(num_frames: int) -> List[int]:
    """Strides reducing ``num_frames`` to 1: 351 -> [3, 9, 13], else greedy strides of 3 ending in the remainder
    (243 -> [3] * 5)."""
    if num_frames == 351:
        return [3, 9, 13]
    strides, n = [], num_frames
    while n > 1:
        s = 3 if n > 3 else n
        strides.append(s)
        n = (n + 2 - 3) // s + 1
    return strides or [1]
