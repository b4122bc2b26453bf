r"""Synthetic click and conversion data with real sample-selection bias (numpy only).

The setting of Ma, Zhao, Huang, Wang, Hu, Zhu and Gai, "Entire Space
Multi-Task Model: An Effective Approach for Estimating Post-Click Conversion
Rate", SIGIR 2018 (ESMM). An impression is clicked or not; a conversion
(purchase) can only be observed after a click. ESMM models, over the entire
space of impressions,

.. math::

    \underbrace{p(y{=}1, z{=}1 \mid x)}_{\text{CTCVR}}
    = \underbrace{p(y{=}1 \mid x)}_{\text{CTR}}
      \cdot \underbrace{p(z{=}1 \mid y{=}1, x)}_{\text{CVR}},

with :math:`y` the click and :math:`z` the conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mtl_course.checks import as_generator, check_real, positive_int
from mtl_course.data.types import MultiTaskSplit

__all__ = ["ClickConversion", "ClickConversionTruth", "click_conversion"]


@dataclass(frozen=True)
class ClickConversionTruth:
    """The latent quantities behind :func:`click_conversion` (for evaluation only).

    Attributes:
        p_click: true click probability (CTR) of each impression, ``(n,)``.
        p_conversion_given_click: true post-click conversion probability
            (CVR) of each impression, ``(n,)``, defined on the entire space.
        would_convert: the latent 0/1 label "would convert if clicked",
            float32 ``(n,)``; observed only where the impression was clicked.
    """

    p_click: np.ndarray
    p_conversion_given_click: np.ndarray
    would_convert: np.ndarray

    @property
    def p_click_and_conversion(self) -> np.ndarray:
        """The true CTCVR, ``p_click * p_conversion_given_click``."""
        return self.p_click * self.p_conversion_given_click


class ClickConversion(NamedTuple):
    """``split, truth = click_conversion(...)``."""

    split: MultiTaskSplit
    truth: ClickConversionTruth


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def click_conversion(
    n: int = 20000,
    seed: int = 0,
    dim: int = 16,
    overlap: float = 0.6,
    signal: float = 1.5,
    click_bias: float = -2.0,
    conversion_bias: float = -1.0,
) -> ClickConversion:
    r"""Impressions with a click label and a click-and-convert label.

    Generating model, with :math:`x \sim \mathcal N(0, I_d)`, unit vectors
    :math:`a \perp a_\perp` and :math:`b = \rho\, a + \sqrt{1-\rho^2}\, a_\perp`
    (:math:`\rho` = ``overlap``, :math:`s` = ``signal``):

    .. math::

        p_{\text{click}} = \sigma(s\, a^\top x + b_c), \qquad
        p_{\text{cvr}} = \sigma(s\, b^\top x + b_v),

    click :math:`c \sim \text{Bernoulli}(p_{\text{click}})` and latent
    "would convert" :math:`v \sim \text{Bernoulli}(p_{\text{cvr}})`, independent
    given :math:`x`.

    Labels (design choice of this package, following ESMM):

    * ``y["click"]`` = :math:`c`;
    * ``y["conversion"]`` = :math:`c\,v`, the *click-and-convert* (CTCVR)
      label, observed on every impression: 0 whenever there is no click.

    The post-click CVR training set of a conventional model is
    ``split.subset(split.y["click"] == 1)`` with target ``y["conversion"]``.
    Because the click and conversion directions overlap (:math:`\rho \ne 0`),
    clicked impressions are not a random sample: their mean
    :math:`p_{\text{cvr}}` differs from the entire-space mean (it is higher
    for :math:`\rho > 0`). That is the sample-selection bias ESMM addresses;
    with :math:`\rho = 0` it vanishes.

    Labels are float32 0/1 (ready for binary cross-entropy); ``x`` is float32
    ``(n, dim)``. The latent probabilities are returned in ``truth``, which
    a ``MultiTaskSplit`` cannot carry.

    Args:
        n: number of impressions.
        seed: seed of the weights, features and labels.
        dim: feature dimension (``>= 2``).
        overlap: :math:`\rho \in [-1, 1]`, cosine between the click and the
            conversion weight vectors.
        signal: :math:`s \ge 0`, norm of both weight vectors.
        click_bias, conversion_bias: intercepts :math:`b_c, b_v` (set the
            click rate, about 20 % by default, and the conversion rate).
    """
    n = positive_int(n, "n")
    dim = positive_int(dim, "dim", 2)
    rho = check_real(overlap, "overlap", -1.0, 1.0)
    signal = check_real(signal, "signal", 0.0)
    click_bias = check_real(click_bias, "click_bias")
    conversion_bias = check_real(conversion_bias, "conversion_bias")
    rng = as_generator(positive_int(seed, "seed", 0))

    basis, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
    a = basis[:, 0]
    b = rho * basis[:, 0] + math.sqrt(1.0 - rho * rho) * basis[:, 1]
    x = rng.standard_normal((n, dim))
    p_click = _sigmoid(signal * (x @ a) + click_bias)
    p_cvr = _sigmoid(signal * (x @ b) + conversion_bias)
    click = (rng.random(n) < p_click).astype(np.float32)
    would_convert = (rng.random(n) < p_cvr).astype(np.float32)

    split = MultiTaskSplit(
        x.astype(np.float32), {"click": click, "conversion": click * would_convert}
    )
    truth = ClickConversionTruth(p_click, p_cvr, would_convert)
    return ClickConversion(split, truth)
