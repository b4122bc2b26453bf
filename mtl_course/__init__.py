"""mtl_course: the companion package of the executable multi-task learning course.

The top-level package is framework free: importing it never imports PyTorch or
TensorFlow. Pick a framework explicitly::

    from mtl_course import torch as mtl      # PyTorch implementations
    from mtl_course import tf as mtl         # TensorFlow / Keras 3 twins

Framework-free parts: :mod:`mtl_course.data` (numpy data sets),
:mod:`mtl_course.metrics` (per-task metrics and delta_m),
:mod:`mtl_course.objective` (Pareto fronts and scalarization),
:mod:`mtl_course.classical` (convex MTL in numpy/scipy) and
:mod:`mtl_course.core` (the math the torch and tf twins share).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
