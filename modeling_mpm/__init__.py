"""MPM: masked 2D-3D pose modeling as a Hugging Face model family.

Importing the package registers ``model_type="mpm"`` with ``AutoConfig``/``AutoModel`` and the
auto classes for remote code, so ``AutoModel.from_pretrained(dir)`` works in-process.
"""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

from .configuration_mpm import MPMConfig
from .masking import (
    exact_mask_ratio,
    mirror_mask,
    nominal_mask_ratio,
    sample_spatiotemporal_mask,
    sample_tube_mask,
)
from .modeling_mpm import (
    MPMForMaskedPoseModeling,
    MPMForPoseLifting,
    MPMMaskedPoseModelingOutput,
    MPMModel,
    MPMModelOutput,
    MPMPoseLiftingOutput,
    MPMPreTrainedModel,
)
from .skeleton import SKELETONS, Skeleton, get_skeleton

__version__ = "0.1.0"

AutoConfig.register("mpm", MPMConfig, exist_ok=True)
# A tuple makes AutoModel pick the class named in config.architectures: a saved lifter loads as
# MPMForPoseLifting, a pre-training folder as MPMForMaskedPoseModeling, a bare config as MPMModel.
AutoModel.register(MPMConfig, (MPMModel, MPMForPoseLifting, MPMForMaskedPoseModeling), exist_ok=True)
AutoModelForPreTraining.register(MPMConfig, MPMForMaskedPoseModeling, exist_ok=True)

# Saved folders carry the code (auto_map) so they load with trust_remote_code=True where the
# package is not installed; save_pretrained writes AutoModel and the task auto class
# (MPMPreTrainedModel._auto_map_classes), so in-process and remote loading pick the same class.
MPMConfig.register_for_auto_class()
MPMModel.register_for_auto_class("AutoModel")
MPMForMaskedPoseModeling.register_for_auto_class("AutoModelForPreTraining")
MPMForPoseLifting.register_for_auto_class("AutoModel")
from . import pipeline_mpm as _pipeline_mpm  # noqa: E402,F401  registers "pose-lifting" and "pose-completion"
