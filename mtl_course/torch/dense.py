"""A small convolutional network for dense prediction (PyTorch): one shared
encoder, one decoder per task, as a :class:`~mtl_course.torch.models.HardSharing` model.

Layout: channels first. Inputs are ``(n, in_channels, H, W)`` with ``H`` and
``W`` divisible by 4; the ``"segmentation"`` decoder returns logits
``(n, num_classes, H, W)`` and the ``"depth"`` decoder ``(n, 1, H, W)``.
The Keras twin :mod:`mtl_course.tf.dense` takes and returns the same layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.core.model_config import DENSE_TASKS, check_dense_config
from mtl_course.torch.models.sharing import HardSharing

__all__ = ["dense_prediction_model", "segmentation_loss"]


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)


def _decoder(width: int, out_channels: int) -> nn.Sequential:
    """Upsample 1/4 -> 1/2 -> full resolution, then a 1x1 convolution to the task's channels."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), _conv(2 * width, width), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"), _conv(width, width), nn.ReLU(),
        nn.Conv2d(width, out_channels, kernel_size=1),
    )


def dense_prediction_model(in_channels: int, num_classes: int, width: int = 16,
                           tasks: Sequence[str] = DENSE_TASKS) -> HardSharing:
    """Shared convolutional encoder with one decoder per task (hard parameter sharing).

    Encoder: ``conv3x3(in, w), ReLU, maxpool2, conv3x3(w, 2w), ReLU, maxpool2``
    (a quarter of the resolution). Each decoder: ``upsample2, conv3x3(2w, w),
    ReLU, upsample2, conv3x3(w, w), ReLU, conv1x1(w, out)`` with ``out =
    num_classes`` for ``"segmentation"`` and 1 for ``"depth"``. This is the
    shared-encoder / task-decoder layout of dense multi-task networks such as
    Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
    Losses for Scene Geometry and Semantics", CVPR 2018, at toy scale.

    Args:
        in_channels: channels of the input images.
        num_classes: segmentation classes (background included), >= 2.
        width: channels of the first layer (the encoder output has ``2 * width``).
        tasks: which decoders to build, a subset of :data:`mtl_course.core.model_config.DENSE_TASKS`; one
            task gives a single-task network of the same shape.

    Examples:
        >>> import torch
        >>> model = dense_prediction_model(in_channels=1, num_classes=3, width=4)
        >>> {k: tuple(v.shape) for k, v in model(torch.zeros(2, 1, 8, 8)).items()}
        {'segmentation': (2, 3, 8, 8), 'depth': (2, 1, 8, 8)}
    """
    tasks = check_dense_config(in_channels, num_classes, width, tasks)
    trunk = nn.Sequential(
        _conv(in_channels, width), nn.ReLU(), nn.MaxPool2d(2),
        _conv(width, 2 * width), nn.ReLU(), nn.MaxPool2d(2),
    )
    out = {"segmentation": num_classes, "depth": 1}
    return HardSharing(trunk, {t: _decoder(width, out[t]) for t in tasks})


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Mean per-pixel softmax cross-entropy of logits ``(n, C, H, W)`` against classes ``(n, H, W)``.

    :math:`\frac{1}{nHW}\sum_{i,h,w} -\log \operatorname{softmax}(z_{i,:,h,w})_{y_{ihw}}`. On a GPU the
    per-pixel losses are averaged by an ordinary mean: the mean reduction of
    ``nll_loss2d`` accumulates with atomic additions on CUDA, has no
    deterministic kernel, and would make every step warn under
    ``seed_everything`` (and differ from run to run in the last bits).

    Examples:
        >>> import torch
        >>> logits = torch.zeros(1, 3, 2, 2)  # 3 classes, all equally likely
        >>> round(float(segmentation_loss(logits, torch.zeros(1, 2, 2, dtype=torch.long))), 4)  # log 3
        1.0986
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"segmentation_loss needs logits (n, C, H, W) and labels (n, H, W), "
                         f"got {tuple(logits.shape)} and {tuple(target.shape)}")
    if logits.device.type == "cpu":  # deterministic on the CPU; the stored chapter outputs use it
        return F.cross_entropy(logits, target.long())
    return F.cross_entropy(logits, target.long(), reduction="none").mean()
