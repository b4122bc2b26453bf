"""PyTorch implementations of the course's models, weightings and gradient methods.

The public names here are mirrored one for one by :mod:`mtl_course.tf`.
"""

from mtl_course.torch.models import (
    CGCLayer,
    CrossStitch,
    CrossStitchUnit,
    ESMM,
    HardSharing,
    MMoE,
    MultiTaskModel,
    PLE,
    SoftSharing,
    ctcvr_logit,
    mix_experts,
    mlp,
)
from mtl_course.torch.runtime import device, seed_everything

__all__ = [
    "CGCLayer",
    "CrossStitch",
    "CrossStitchUnit",
    "ESMM",
    "HardSharing",
    "MMoE",
    "MultiTaskModel",
    "PLE",
    "SoftSharing",
    "ctcvr_logit",
    "device",
    "mix_experts",
    "mlp",
    "seed_everything",
]
