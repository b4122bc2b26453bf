"""A small convolutional network for dense prediction (Keras twin of
:mod:`mtl_course.torch.dense`): one shared encoder, one decoder per task, as a
:class:`~mtl_course.tf.models.HardSharing` model.

Layout: TensorFlow's CPU convolutions only support channels last (NHWC),
while the course's data and the PyTorch twin are channels first (NCHW). So
the model takes the same ``(n, in_channels, H, W)`` inputs as the torch
model, transposes to NHWC as its first layer, and every decoder transposes
its output back: ``"segmentation"`` logits ``(n, num_classes, H, W)`` and
``"depth"`` ``(n, 1, H, W)``, exactly the torch shapes. Conv kernels are
stored ``(kh, kw, in, out)`` in Keras and ``(out, in, kh, kw)`` in torch;
:func:`copy_dense_torch_to_tf` maps one onto the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mtl_course.core.model_config import DENSE_TASKS, check_dense_config
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.models.sharing import HardSharing

__all__ = ["copy_dense_torch_to_tf", "dense_prediction_model", "segmentation_loss"]


def _conv(c_out: int, kernel: int = 3) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(c_out, kernel, padding="same")


def _decoder(width: int, out_channels: int) -> keras.Sequential:
    return keras.Sequential([
        keras.layers.UpSampling2D(2, interpolation="nearest"), _conv(width), keras.layers.ReLU(),
        keras.layers.UpSampling2D(2, interpolation="nearest"), _conv(width), keras.layers.ReLU(),
        _conv(out_channels, kernel=1),
        keras.layers.Permute((3, 1, 2)),  # NHWC -> NCHW
    ])


def dense_prediction_model(in_channels: int, num_classes: int, width: int = 16,
                           tasks: Sequence[str] = DENSE_TASKS) -> HardSharing:
    """Shared convolutional encoder with one decoder per task (Keras twin of
    :func:`mtl_course.torch.dense.dense_prediction_model`; see there for the
    layers and the reference). Inputs and outputs are channels first, like the torch model.

    The model is built on a dummy ``(1, in_channels, 8, 8)`` batch, so its
    parameters exist at once (the network is fully convolutional: any ``H`` and ``W``
    divisible by 4 work afterwards).

    Examples:
        >>> import tensorflow as tf
        >>> model = dense_prediction_model(in_channels=1, num_classes=3, width=4)
        >>> {k: tuple(v.shape) for k, v in model(tf.zeros((2, 1, 8, 8))).items()}
        {'segmentation': (2, 3, 8, 8), 'depth': (2, 1, 8, 8)}
    """
    tasks = check_dense_config(in_channels, num_classes, width, tasks)
    trunk = keras.Sequential([
        keras.layers.Permute((2, 3, 1)),  # NCHW -> NHWC
        _conv(width), keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
        _conv(2 * width), keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
    ])
    out = {"segmentation": num_classes, "depth": 1}
    model = HardSharing(trunk, {t: _decoder(width, out[t]) for t in tasks})
    model(np.zeros((1, in_channels, 8, 8), dtype=np.float32))
    return model


def segmentation_loss(logits: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean per-pixel softmax cross-entropy of logits ``(n, C, H, W)`` against classes ``(n, H, W)``.

    Examples:
        >>> import tensorflow as tf
        >>> logits = tf.zeros((1, 3, 2, 2))  # 3 classes, all equally likely
        >>> round(float(segmentation_loss(logits, tf.zeros((1, 2, 2), dtype=tf.int32))), 4)  # log 3
        1.0986
    """
    if logits.shape.rank != 4 or tuple(target.shape) != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"segmentation_loss needs logits (n, C, H, W) and labels (n, H, W), "
                         f"got {tuple(logits.shape)} and {tuple(target.shape)}")
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(target, tf.int64), logits=tf.transpose(logits, (0, 2, 3, 1)))
    return tf.reduce_mean(per_pixel)


def copy_dense_torch_to_tf(torch_model: Any, tf_model: HardSharing) -> HardSharing:
    """Copy the weights of a torch dense model into a Keras one built with the same arguments.

    Convolutions are paired in order (encoder, then each decoder); a torch
    kernel ``(out, in, kh, kw)`` becomes the Keras kernel ``(kh, kw, in, out)``.
    Raises ValueError when the two models' tasks or layer shapes differ.
    """
    from torch import nn  # only the caller needs torch

    if tuple(torch_model.task_names) != tuple(tf_model.task_names):
        raise ValueError(f"task names differ: {torch_model.task_names} vs {tf_model.task_names}")
    pairs = [(torch_model.trunk, tf_model.trunk)]
    pairs += [(torch_model.heads[t], tf_model.heads[t]) for t in tf_model.task_names]
    for t_block, k_block in pairs:
        t_convs = [m for m in t_block.modules() if isinstance(m, nn.Conv2d)]
        k_convs = [layer for layer in k_block.layers if isinstance(layer, keras.layers.Conv2D)]
        if len(t_convs) != len(k_convs):
            raise ValueError(f"{len(t_convs)} torch convolutions but {len(k_convs)} Keras ones")
        for t_conv, k_conv in zip(t_convs, k_convs):
            kernel = t_conv.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)
            if kernel.shape != tuple(k_conv.kernel.shape):
                raise ValueError(f"kernel shapes differ: {kernel.shape} vs {tuple(k_conv.kernel.shape)}")
            k_conv.kernel.assign(kernel)
            k_conv.bias.assign(t_conv.bias.detach().cpu().numpy())
    return tf_model
