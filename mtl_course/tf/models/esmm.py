"""ESMM, the Entire Space Multi-task Model for conversion rates (Keras).

Twin of ``mtl_course.torch.models.esmm``, with the same arguments, outputs
and parameter split; the docstrings there give formulas and the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from mtl_course.core.model_config import esmm_sizes
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.models.base import MultiTaskModel, check_input, mlp, variables_of

__all__ = ["ESMM", "ctcvr_logit"]


def ctcvr_logit(click_logit: tf.Tensor, cvr_logit: tf.Tensor) -> tf.Tensor:
    """The logit of ``pCTCVR = sigmoid(a) * sigmoid(b)`` without overflow; twin of
    :func:`mtl_course.torch.models.ctcvr_logit` (see there for the derivation).

    Examples:
        >>> import tensorflow as tf
        >>> a, b = tf.constant([0.0, 100.0]), tf.constant([0.0, 100.0])
        >>> p = tf.sigmoid(ctcvr_logit(a, b))
        >>> p.numpy().tolist()  # 0.5 * 0.5, and no overflow for large logits
        [0.25, 1.0]
    """
    log_p = tf.math.log_sigmoid(click_logit) + tf.math.log_sigmoid(cvr_logit)
    not_click = tf.math.log_sigmoid(-click_logit)
    click_not_cvr = tf.math.log_sigmoid(click_logit) + tf.math.log_sigmoid(-cvr_logit)
    log_not_p = tf.reduce_logsumexp(tf.stack([not_click, click_not_cvr]), axis=0)
    return log_p - log_not_p


class ESMM(MultiTaskModel):
    """Entire Space Multi-task Model (Ma et al., SIGIR 2018); twin of
    :class:`mtl_course.torch.models.ESMM`: outputs ``"click"``, ``"conversion"``
    (pCTCVR) and the non-task ``"cvr"``, all logits of shape ``(batch, 1)``.

    Examples:
        >>> import tensorflow as tf
        >>> model = ESMM(6, bottom_hidden=8, tower_hidden=4)
        >>> out = model(tf.ones((2, 6)))
        >>> model.task_names, {k: tuple(v.shape) for k, v in out.items()}
        (('click', 'conversion'), {'click': (2, 1), 'conversion': (2, 1), 'cvr': (2, 1)})
        >>> p_ctcvr = tf.sigmoid(out['click']) * tf.sigmoid(out['cvr'])
        >>> bool(tf.reduce_all(tf.abs(tf.sigmoid(out['conversion']) - p_ctcvr) < 1e-6))
        True
    """

    def __init__(
        self,
        input_dim: int,
        bottom_hidden: int | Sequence[int],
        tower_hidden: int | Sequence[int] = (),
        activation: str = "relu",
        **kwargs,
    ) -> None:
        super().__init__(("click", "conversion"), **kwargs)
        self.input_dim, bottom, tower = esmm_sizes(input_dim, bottom_hidden, tower_hidden)
        self.bottom = mlp(bottom, activation, output_activation=True)
        self.ctr_tower, self.cvr_tower = mlp(tower, activation), mlp(tower, activation)

    def call(self, x) -> dict[str, tf.Tensor]:
        x = check_input(x, self.input_dim)
        z = self.bottom(x)
        click, cvr = self.ctr_tower(z), self.cvr_tower(z)
        return {"click": click, "conversion": ctcvr_logit(click, cvr), "cvr": cvr}

    def shared_parameters(self) -> list:
        return variables_of([self.bottom, self.ctr_tower])

    def task_parameters(self, name: str) -> list:
        self._check_task(name)
        return variables_of([self.cvr_tower]) if name == "conversion" else []
