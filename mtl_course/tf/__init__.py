"""TensorFlow (Keras 3) twins of :mod:`mtl_course.torch`, name for name.

Importing this subpackage first quiets TensorFlow's C++ start-up logging (see
:mod:`mtl_course.tf._environment`), so import it before ``tensorflow`` itself.
"""

from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.runtime import device, seed_everything

__all__ = ["device", "seed_everything"]
