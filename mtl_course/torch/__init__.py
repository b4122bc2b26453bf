"""PyTorch implementations of the course's models, weightings and gradient methods.

The public names here are mirrored one for one by :mod:`mtl_course.tf`.
"""

from mtl_course.core.tasks import History, Task
from mtl_course.core.weighting import uncertainty_optimum
from mtl_course.torch.affinity import task_affinity
from mtl_course.torch.aggregators import (
    AGGREGATORS,
    aligned_mtl,
    cagrad,
    imtl_g,
    mean,
    mgda,
    nash_mtl,
    pcgrad,
    upgrad,
)
from mtl_course.torch.dense import dense_prediction_model, segmentation_loss
from mtl_course.torch.gradients import (
    aggregator_weights,
    backward,
    jacobian,
    representation_jacobian,
    set_gradients,
    unflatten_gradients,
)
from mtl_course.torch.gramian import LayerGramian, gramian_weights
from mtl_course.torch.meta import adapt, reptile, reptile_step
from mtl_course.torch.models import (
    ESMM,
    PLE,
    CGCLayer,
    CrossStitch,
    CrossStitchUnit,
    HardSharing,
    MMoE,
    MultiTaskModel,
    SoftSharing,
    Wrapped,
    ctcvr_logit,
    mix_experts,
    mlp,
    wrap,
)
from mtl_course.torch.runtime import device, seed_everything
from mtl_course.torch.train import evaluate, fit, load, predict, save
from mtl_course.torch.weighting import (
    DWA,
    RLW,
    WEIGHTINGS,
    EqualWeighting,
    GradNorm,
    StaticWeighting,
    UncertaintyWeighting,
    Weighting,
)

__all__ = [
    "adapt",
    "AGGREGATORS",
    "aggregator_weights",
    "backward",
    "aligned_mtl",
    "cagrad",
    "CGCLayer",
    "CrossStitch",
    "CrossStitchUnit",
    "ctcvr_logit",
    "dense_prediction_model",
    "device",
    "DWA",
    "EqualWeighting",
    "ESMM",
    "evaluate",
    "fit",
    "gramian_weights",
    "GradNorm",
    "HardSharing",
    "History",
    "imtl_g",
    "jacobian",
    "LayerGramian",
    "load",
    "mean",
    "mgda",
    "mix_experts",
    "mlp",
    "MMoE",
    "MultiTaskModel",
    "nash_mtl",
    "pcgrad",
    "PLE",
    "predict",
    "representation_jacobian",
    "reptile",
    "reptile_step",
    "RLW",
    "save",
    "seed_everything",
    "segmentation_loss",
    "set_gradients",
    "SoftSharing",
    "StaticWeighting",
    "Task",
    "task_affinity",
    "uncertainty_optimum",
    "UncertaintyWeighting",
    "unflatten_gradients",
    "upgrad",
    "Weighting",
    "WEIGHTINGS",
    "wrap",
    "Wrapped",
]
