r"""Which aggregators need only the Gram matrix, and the cost model of the layer-wise Gramian.

Every aggregator of :mod:`mtl_course.core.aggregation` returns ``d = w^T J``
with weights ``w`` that depend on ``J`` only through :math:`G = J J^\top`. So a
training step can build ``G`` without forming ``J`` (``mtl_course.torch.gramian``,
``mtl_course.tf.gramian``), compute ``w`` and run one backward pass of
:math:`\sum_t w_t L_t`, whose gradient on the shared parameters is ``w^T J``.

:data:`GRAM_RULES` maps each aggregator name to the rule ``(G, rtol, **options)
-> w`` that the framework aggregators apply (``rtol`` from
:func:`~mtl_course.core.aggregation.gram_rtol` of the Jacobian's dtype);
:func:`gram_rule` resolves an aggregator function, or a ``functools.partial`` of
one with keyword options, to that rule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np

from mtl_course.core import aggregation

Rule = Callable[[np.ndarray, float], np.ndarray]

__all__ = ["GRAM_RULES", "Rule", "gram_rule", "linear_layer_costs"]

GRAM_RULES: dict[str, Callable[..., np.ndarray]] = {
    "mean": lambda G, rtol: aggregation.mean_weights(G),
    "mgda": lambda G, rtol: aggregation.mgda_weights(G),
    "pcgrad": lambda G, rtol, generator=None: aggregation.pcgrad_weights(G, generator),
    "cagrad": lambda G, rtol, c=0.5: aggregation.cagrad_weights(G, c=c, rtol=rtol),
    "nash_mtl": lambda G, rtol, max_iter=100: aggregation.nash_mtl_weights(G, rtol=rtol, max_iter=max_iter),
    "imtl_g": lambda G, rtol: aggregation.imtl_g_weights(G, rtol=rtol),
    "aligned_mtl": lambda G, rtol: aggregation.aligned_mtl_weights(G, rtol=rtol),
    "upgrad": lambda G, rtol: aggregation.upgrad_weights(G, rtol=rtol),
}
"""Aggregator name -> ``rule(G, rtol, **options)``, the weights its framework function computes.

Examples:
    >>> import numpy as np
    >>> G = np.array([[1.0, 0.0], [0.0, 4.0]])
    >>> GRAM_RULES["mgda"](G, 1e-12).round(4), GRAM_RULES["cagrad"](G, 1e-12, c=0.0).round(4)
    (array([0.8, 0.2]), array([0.5, 0.5]))
"""


def gram_rule(aggregator: Callable, aggregators: Mapping[str, Callable]) -> Rule | None:
    """The rule ``(G, rtol) -> w`` of ``aggregator``, or None when it is not a function of ``G``.

    ``aggregators`` is the framework's ``AGGREGATORS``; ``aggregator`` must be one
    of its functions, or a ``functools.partial`` of one with keyword options only
    (as ``fit`` builds PCGrad with its seeded generator). Anything else, for
    example an aggregator of your own, gives None: it needs the Jacobian.

    Examples:
        >>> import numpy as np
        >>> from mtl_course.torch import AGGREGATORS, mgda
        >>> rule = gram_rule(mgda, AGGREGATORS)
        >>> rule(np.array([[1.0, 0.0], [0.0, 4.0]]), 1e-12).round(4)  # the weights, from G alone
        array([0.8, 0.2])
        >>> gram_rule(lambda J: J.mean(0), AGGREGATORS) is None  # not an aggregator it knows
        True
    """
    options: dict = {}
    if isinstance(aggregator, functools.partial):
        if aggregator.args:
            return None
        options = dict(aggregator.keywords)
        aggregator = aggregator.func
    for name, function in aggregators.items():
        if function is aggregator and name in GRAM_RULES:
            rule = GRAM_RULES[name]
            return functools.partial(rule, **options) if options else rule
    return None


def linear_layer_costs(tasks: int, rows: int, d_in: int, d_out: int) -> tuple[int, int]:
    r"""Multiply-adds of a linear layer's block of ``G``: ``(Gram trick, per-task weight gradients)``.

    For inputs ``A`` (``rows x d_in``, a bias column included) and output
    gradients ``D_t`` (``rows x d_out``), the block is
    :math:`G_{st} = \sum_{b,b'} (A A^\top)_{bb'} (D_s D_t^\top)_{bb'}`.

    * Gram trick: :math:`K = A A^\top`, then :math:`E_t = K D_t` and
      :math:`G_{st} = \langle D_s, E_t\rangle`: ``rows^2 d_in + T rows^2 d_out + T^2 rows d_out``;
      it never holds a weight-sized tensor per task.
    * Per-task weight gradients :math:`g_t = D_t^\top A` (``T x d_out x d_in``),
      then :math:`g g^\top`: ``T rows d_in d_out + T^2 d_in d_out``.

    The Gram trick wins when the batch (``rows``) is small next to the layer's
    width; the engines take the cheaper one per layer.

    Examples:
        >>> linear_layer_costs(tasks=2, rows=32, d_in=129, d_out=128)  # (Gram trick, per-task gradients)
        (410624, 1122816)
    """
    gram = rows * rows * d_in + tasks * rows * rows * d_out + tasks * tasks * rows * d_out
    explicit = tasks * rows * d_in * d_out + tasks * tasks * d_in * d_out
    return gram, explicit
