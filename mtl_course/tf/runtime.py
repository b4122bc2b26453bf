"""Device selection and seeding for the TensorFlow side of the course."""

from __future__ import annotations

import random

import numpy as np
import tensorflow as tf

from mtl_course.checks import check_seed
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)


def device() -> str:
    """The best available device as a TensorFlow device string.

    The first visible GPU (``"/GPU:0"``), else ``"/CPU:0"``. Use it as
    ``with tf.device(device()): ...``; Keras places variables on the GPU by
    default when one is visible, so most code never needs it.

    Examples:
        >>> device().split(':')[0] in ('/GPU', '/CPU')
        True
    """
    if tf.config.list_physical_devices("GPU"):
        return "/GPU:0"
    return "/CPU:0"


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras.

    Calls ``keras.utils.set_random_seed`` (which seeds Python's ``random``,
    NumPy and TensorFlow's global generator). On CPU two runs of the same code
    then give bit-identical results. With ``deterministic=True`` it also calls
    ``tf.config.experimental.enable_op_determinism()``, which makes GPU kernels
    deterministic at some speed cost and raises an error for ops that have no
    deterministic GPU kernel, and turns TensorFloat-32 off
    (``tf.config.experimental.enable_tensor_float_32_execution(False)``):
    TensorFlow uses TF32, a 10-bit mantissa, for float32 matrix products on
    Ampere and newer GPUs by default, PyTorch does not, so twin results would
    differ by about 1e-3 instead of float32 rounding. Runs are then repeatable
    on the same GPU model and library versions, but still differ from CPU runs
    in the last bits.

    Examples:
        >>> import tensorflow as tf
        >>> seed_everything(0, deterministic=False)
        >>> a = tf.random.uniform((2,))
        >>> seed_everything(0, deterministic=False)
        >>> bool(tf.reduce_all(a == tf.random.uniform((2,))))
        True
    """
    import keras

    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        tf.config.experimental.enable_tensor_float_32_execution(False)
