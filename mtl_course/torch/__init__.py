"""PyTorch implementations of the course's models, weightings and gradient methods.

The public names here are mirrored one for one by :mod:`mtl_course.tf`.
"""

from mtl_course.torch.runtime import device, seed_everything

__all__ = ["device", "seed_everything"]
