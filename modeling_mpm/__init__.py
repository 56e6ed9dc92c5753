"""MPM: masked 2D-3D pose modeling as a Hugging Face model family."""

from .skeleton import SKELETONS, Skeleton, get_skeleton

__version__ = "0.1.0"
