"""TensorFlow (Keras 3) twins of :mod:`mtl_course.torch`, name for name.

Importing this subpackage first quiets TensorFlow's C++ start-up logging (see
:mod:`mtl_course.tf._environment`), so import it before ``tensorflow`` itself.
"""

from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

from mtl_course.tf.models import (
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
from mtl_course.tf.runtime import device, seed_everything

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
