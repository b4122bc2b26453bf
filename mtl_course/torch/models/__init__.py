"""Multi-task architectures in PyTorch (twins of :mod:`mtl_course.tf.models`).

Every model has ``task_names``, returns ``dict[task, output]`` from ``forward``,
and splits its parameters into ``shared_parameters()`` and ``task_parameters(name)``.
"""

from mtl_course.torch.models.base import MultiTaskModel, mlp
from mtl_course.torch.models.cross_stitch import CrossStitch, CrossStitchUnit
from mtl_course.torch.models.esmm import ESMM, ctcvr_logit
from mtl_course.torch.models.experts import PLE, CGCLayer, MMoE, mix_experts
from mtl_course.torch.models.sharing import HardSharing, SoftSharing
from mtl_course.torch.models.wrapped import Wrapped, wrap

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
