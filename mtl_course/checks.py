"""Argument checks every layer of the package shares: task names, counts, sizes and rates.

One home for the small validations that turn bad input into an exception
naming the argument and the problem, so the torch and tf twins, the core
and the chapter drivers all reject it with the same message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np

__all__ = ["as_generator", "check_count", "check_mapping", "check_nonnegative", "check_outputs", "check_rate", "check_real", "check_seed", "check_task_names",
           "layer_sizes", "positive_int"]


def check_task_names(names: Sequence[str], what: str = "tasks") -> tuple[str, ...]:
    """Validate task names: at least one, unique, non-empty strings without dots.

    Dots are refused because PyTorch uses them to separate the parts of a
    parameter name (``heads.click.0.weight``).

    Examples:
        >>> check_task_names(['click', 'buy'])
        ('click', 'buy')
        >>> check_task_names(['heads.click'])
        Traceback (most recent call last):
            ...
        ValueError: task name 'heads.click' contains '.', which is not allowed
    """
    names = tuple(names)
    if not names:
        raise ValueError(f"{what} is empty: a multi-task model needs at least one task")
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"task names must be non-empty strings, got {name!r} in {what}")
        if "." in name:
            raise ValueError(f"task name {name!r} contains '.', which is not allowed")
    if len(set(names)) != len(names):
        raise ValueError(f"task names in {what} must be unique, got {names}")
    return names


def check_mapping(modules: object, what: str) -> dict:
    """A non-empty ``name -> module`` mapping with valid task names, as a dict.

    Anything with ``keys()`` and item access counts (a dict, ``torch.nn.ModuleDict``).

    Examples:
        >>> check_mapping({'a': 'module a'}, 'heads')
        {'a': 'module a'}
        >>> check_mapping({}, 'heads')
        Traceback (most recent call last):
            ...
        ValueError: heads is empty: a multi-task model needs at least one task
    """
    if not isinstance(modules, Mapping) and not (hasattr(modules, "keys") and hasattr(modules, "__getitem__")):
        raise TypeError(f"{what} must be a mapping task name -> module, got {type(modules).__name__}")
    names = list(modules.keys())
    check_task_names(names, what)
    return {name: modules[name] for name in names}


def positive_int(value: object, what: str, minimum: int = 1) -> int:
    """``value`` as an int, refusing bools and non-integers (``TypeError``) and values below ``minimum``.

    Examples:
        >>> positive_int(3, 'num_experts')
        3
        >>> positive_int(True, 'num_experts')
        Traceback (most recent call last):
            ...
        TypeError: num_experts must be an int, got True
        >>> positive_int(-1, 'seed', minimum=0)
        Traceback (most recent call last):
            ...
        ValueError: seed must be >= 0, got -1
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be positive, got {value}" if minimum == 1
                         else f"{what} must be >= {minimum}, got {value}")
    return int(value)


def layer_sizes(values: int | Sequence[int], what: str, allow_empty: bool = True) -> tuple[int, ...]:
    """Hidden layer sizes as a tuple of positive ints (an int means one layer).

    Examples:
        >>> layer_sizes(8, 'tower_hidden'), layer_sizes([16, 8], 'tower_hidden'), layer_sizes((), 'tower_hidden')
        ((8,), (16, 8), ())
    """
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise TypeError(f"{what} must be an int or a sequence of ints, got {values!r}")
    sizes = tuple(positive_int(v, f"each entry of {what}") for v in values)
    if not sizes and not allow_empty:
        raise ValueError(f"{what} must name at least one layer size")
    return sizes


def check_count(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or ``ValueError`` unless it is an int ``>= minimum``.

    Examples:
        >>> check_count(3, 'meta_steps')
        3
        >>> check_count(0, 'meta_steps')
        Traceback (most recent call last):
            ...
        ValueError: meta_steps must be an int >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_rate(value: object, name: str) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number ``> 0``.

    Examples:
        >>> check_rate(0.1, 'inner_lr')
        0.1
        >>> check_rate(float('nan'), 'inner_lr')
        Traceback (most recent call last):
            ...
        ValueError: inner_lr must be a finite number > 0, got nan
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_nonnegative(value: object, name: str) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number ``>= 0``.

    Examples:
        >>> check_nonnegative(0, 'noise')
        0.0
        >>> check_nonnegative(-0.5, 'noise')
        Traceback (most recent call last):
            ...
        ValueError: noise must be a finite number >= 0, got -0.5
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_real(value: object, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a finite float in ``[low, high]``: ``TypeError`` for a non-number, else ``ValueError``.

    Examples:
        >>> check_real(0.5, 'noise', 0.0)
        0.5
        >>> check_real(2.0, 'rho', -1.0, 1.0)
        Traceback (most recent call last):
            ...
        ValueError: rho must lie in [-1.0, 1.0], got 2.0
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def check_seed(seed: object) -> int:
    """A seed for numpy and the frameworks' global generators: an int in ``[0, 2**32)``.

    Examples:
        >>> check_seed(7)
        7
        >>> check_seed(2**32)
        Traceback (most recent call last):
            ...
        ValueError: seed must be in [0, 2**32), got 4294967296
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return int(seed)


def as_generator(seed: np.random.Generator | int | None, name: str = "generator") -> np.random.Generator:
    """A numpy Generator from a Generator (used as is), an int seed ``>= 0``, or None (fresh entropy).

    The one place the package turns its ``seed`` / ``generator`` / ``rng``
    arguments into a generator; ``name`` is the argument's name in messages.

    Examples:
        >>> import numpy as np
        >>> as_generator(0).integers(10, size=3), as_generator(0).integers(10, size=3)  # a seed
        (array([8, 6, 5]), array([8, 6, 5]))
        >>> generator = np.random.default_rng(1)
        >>> as_generator(generator) is generator
        True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {seed!r}")
    return np.random.default_rng(positive_int(seed, name, minimum=0))


def check_outputs(outputs: Mapping[str, int]) -> dict[str, int]:
    """A ``task name -> output size`` mapping with valid names and positive sizes, as a dict.

    Examples:
        >>> check_outputs({'click': 1, 'digit': 10})
        {'click': 1, 'digit': 10}
    """
    if not isinstance(outputs, Mapping):
        raise TypeError(f"outputs must be a mapping task name -> output size, got {type(outputs).__name__}")
    check_task_names(list(outputs), "outputs")
    return {name: positive_int(size, f"outputs[{name!r}]") for name, size in outputs.items()}
