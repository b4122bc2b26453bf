"""Multi-task architectures in Keras (twins of :mod:`mtl_course.torch.models`).

Every model has ``task_names``, returns ``dict[task, output]`` from ``call``,
and splits its parameters into ``shared_parameters()`` and ``task_parameters(name)``.
"""

from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.models.base import MultiTaskModel, mlp
from mtl_course.tf.models.cross_stitch import CrossStitch, CrossStitchUnit
from mtl_course.tf.models.esmm import ESMM, ctcvr_logit
from mtl_course.tf.models.experts import PLE, CGCLayer, MMoE, mix_experts
from mtl_course.tf.models.sharing import HardSharing, SoftSharing
from mtl_course.tf.models.wrapped import Wrapped, wrap

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
    "mix_experts",
    "mlp",
    "wrap",
    "Wrapped",
]
