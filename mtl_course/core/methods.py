"""The training methods by name, once for both twins: which names exist and what a name builds.

``fit``'s ``method`` argument is a loss *weighting* (chapter 7) or a gradient
*aggregator* (chapter 8), given as an object, a function or a name. The names
are listed here (:data:`WEIGHTING_NAMES`, :data:`AGGREGATOR_NAMES`) and
:func:`resolve_method` turns a name into the object ``fit`` trains with;
:mod:`mtl_course.torch.train` and :mod:`mtl_course.tf.train` pass their own
classes and functions (``WEIGHTINGS``, ``AGGREGATORS``), so the rule (which
name is seeded, which takes the task kinds) is written once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mtl_course.core.tasks import Task

__all__ = ["AGGREGATOR_NAMES", "WEIGHTING_NAMES", "build_weighting", "resolve_aggregator", "resolve_method"]

WEIGHTING_NAMES = ("equal", "uncertainty", "gradnorm", "dwa", "rlw")
"""The loss weightings ``fit`` builds by name (the keys of each twin's ``WEIGHTINGS``), in the book's order.

Examples:
    >>> WEIGHTING_NAMES[:2]
    ('equal', 'uncertainty')
"""

AGGREGATOR_NAMES = ("mean", "mgda", "pcgrad", "cagrad", "nash_mtl", "imtl_g", "aligned_mtl", "upgrad")
"""The gradient aggregators ``fit`` takes by name (the keys of each twin's ``AGGREGATORS``), in the book's order.

Examples:
    >>> "upgrad" in AGGREGATOR_NAMES
    True
"""


def build_weighting(weightings: Mapping[str, type], name: str, tasks: Sequence[str],
                    kinds: str | Sequence[str] = "regression", seed: int | None = None, **settings: Any) -> Any:
    """The weighting ``name`` of a twin (``weightings`` is its ``WEIGHTINGS``) for ``tasks``.

    ``"uncertainty"`` gets the task ``kinds``; ``"rlw"`` draws its random
    weights from a generator seeded with ``seed``; ``settings`` are the
    class's own keyword arguments (``alpha``, ``lr``, ``temperature`` ...).

    Examples:
        >>> class Equal:
        ...     def __init__(self, tasks):
        ...         self.tasks = tasks
        >>> build_weighting({"equal": Equal}, "equal", ["a", "b"]).tasks
        ['a', 'b']
    """
    if name not in weightings:
        raise ValueError(f"unknown weighting {name!r}; use one of {sorted(weightings)}")
    names = list(tasks)
    if name == "uncertainty":
        return weightings[name](names, kinds=kinds, **settings)
    if name == "rlw":
        return weightings[name](generator=seed, tasks=names, **settings)
    return weightings[name](tasks=names, **settings)


def resolve_method(method: Any, tasks: Mapping[str, Task], seed: int | None, weighting_type: type,
                   weightings: Mapping[str, type], aggregators: Mapping[str, Callable]) -> Any:
    """A weighting (bound to ``tasks``) or an aggregator function from ``method``.

    ``weighting_type``, ``weightings`` and ``aggregators`` are the twin's
    ``Weighting`` base class, ``WEIGHTINGS`` and ``AGGREGATORS``. A weighting
    object is bound to the task names; a weighting name is built by
    :func:`build_weighting` ("uncertainty" takes each task's kind from its
    loss); "pcgrad" gets a generator seeded with ``seed`` for its random task
    order (like RLW's draws); another aggregator name gives the function; an
    aggregator passed as a function is used as given.

    Examples:
        >>> def mean(G):
        ...     return "mean of " + G
        >>> resolve_method("mean", {"a": Task("mse")}, 0, type(None), {}, {"mean": mean}) is mean
        True
    """
    names = list(tasks)
    if isinstance(method, weighting_type):
        return method.bind(names)
    if isinstance(method, str):
        if method in weightings:
            return build_weighting(weightings, method, names, kinds=[t.kind for t in tasks.values()], seed=seed)
        if method == "pcgrad":
            return functools.partial(aggregators["pcgrad"], generator=np.random.default_rng(seed))
        if method in aggregators:
            return aggregators[method]
        raise ValueError(f"unknown method {method!r}; weightings: {sorted(weightings)}, "
                         f"aggregators: {sorted(aggregators)}")
    if callable(method):
        return method
    raise TypeError(f"method must be a Weighting, a name or an aggregator function, got {method!r}")


def resolve_aggregator(aggregator: str | Callable, aggregators: Mapping[str, Callable]) -> Callable:
    """The aggregator function named ``aggregator`` in a twin's ``AGGREGATORS``, or ``aggregator`` itself.

    Examples:
        >>> resolve_aggregator("mean", {"mean": sum}) is sum
        True
        >>> resolve_aggregator("avg", {"mean": sum})
        Traceback (most recent call last):
            ...
        ValueError: unknown aggregator 'avg'; use one of ['mean'] or a function
    """
    if isinstance(aggregator, str):
        if aggregator not in aggregators:
            raise ValueError(f"unknown aggregator {aggregator!r}; use one of {sorted(aggregators)} or a function")
        return aggregators[aggregator]
    if not callable(aggregator):
        raise TypeError(f"aggregator must be a function J -> direction or a name, got {aggregator!r}")
    return aggregator
