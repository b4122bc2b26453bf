"""Framework-free checks and constants shared by the torch and tf model twins.

The multi-task models of :mod:`mtl_course.torch.models` and
:mod:`mtl_course.tf.models` take the same constructor arguments; the checks on
those arguments (and the cross-stitch initial matrix) live here, once, in
plain Python and numpy, so both frameworks reject bad input with the same
message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "identity")
COUPLINGS = ("l2", "trace_norm", "weight_decay")


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


def positive_int(value: object, what: str) -> int:
    """``value`` as an int, refusing bools, non-integers and values below 1.

    Examples:
        >>> positive_int(3, 'num_experts')
        3
        >>> positive_int(True, 'num_experts')
        Traceback (most recent call last):
            ...
        TypeError: num_experts must be an int, got True
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be positive, got {value}")
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


def check_activation(activation: str | None) -> str:
    """One of :data:`ACTIVATIONS` (``None`` means ``"identity"``).

    Examples:
        >>> check_activation('relu'), check_activation(None)
        ('relu', 'identity')
        >>> check_activation('swish')
        Traceback (most recent call last):
            ...
        ValueError: unknown activation 'swish'; choose one of ('relu', 'tanh', 'sigmoid', 'gelu', 'identity')
    """
    if activation is None:
        return "identity"
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
    return activation


def tower_specs(tasks: Sequence[str] | Mapping[str, object], tower_hidden: int | Sequence[int] | Mapping,
                is_module: type | tuple[type, ...]) -> dict[str, object]:
    """Each task's tower: a ready module, or ``(hidden sizes, output size)`` to build an MLP from.

    ``tasks`` is a sequence of names (output size 1 each) or a mapping name ->
    output size or tower module (an instance of ``is_module``);
    ``tower_hidden`` is one set of hidden sizes for every tower, or a mapping
    task -> hidden sizes (every task named).

    Examples:
        >>> tower_specs({"price": 1, "kind": 5}, {"price": (8,), "kind": (16, 8)}, ())
        {'price': ((8,), 1), 'kind': ((16, 8), 5)}
    """
    if isinstance(tasks, str):
        raise TypeError("tasks must be a sequence of names or a mapping name -> output size, got a string")
    if isinstance(tasks, Mapping):
        names = check_task_names(list(tasks), "tasks")
        values = dict(tasks)
    else:
        names = check_task_names(list(tasks), "tasks")
        values = {name: 1 for name in names}
    if isinstance(tower_hidden, Mapping):
        extra = [n for n in tower_hidden if n not in names]
        missing = [n for n in names if n not in tower_hidden and not isinstance(values[n], is_module)]
        if extra or missing:
            raise ValueError(f"tower_hidden must name every task {list(names)}: "
                             f"unknown {extra}, missing {missing}")
        hidden = {n: layer_sizes(tower_hidden[n], f"tower_hidden[{n!r}]") for n in names if n in tower_hidden}
    else:
        shared_hidden = layer_sizes(tower_hidden, "tower_hidden")
        hidden = {n: shared_hidden for n in names}
    specs: dict[str, object] = {}
    for name in names:
        value = values[name]
        if is_module and isinstance(value, is_module):
            specs[name] = value
        else:
            specs[name] = (hidden[name], positive_int(value, f"output size of task {name!r}"))
    return specs


def check_strength(strength: float) -> float:
    """A finite, non-negative coupling strength.

    Examples:
        >>> check_strength(0.01)
        0.01
        >>> check_strength(-1.0)
        Traceback (most recent call last):
            ...
        ValueError: strength must be finite and >= 0, got -1.0
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating, np.integer)):
        raise TypeError(f"strength must be a number, got {strength!r}")
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be finite and >= 0, got {strength}")
    return float(strength)


def check_coupling(coupling: str) -> str:
    """One of :data:`COUPLINGS`.

    Examples:
        >>> check_coupling('l2')
        'l2'
        >>> check_coupling('l1')
        Traceback (most recent call last):
            ...
        ValueError: unknown coupling 'l1'; choose one of ('l2', 'trace_norm', 'weight_decay')
    """
    if coupling not in COUPLINGS:
        raise ValueError(f"unknown coupling {coupling!r}; choose one of {COUPLINGS}")
    return coupling


def check_same_shapes(shapes: Mapping[str, Sequence[tuple[int, ...]]], what: str) -> None:
    """Raise unless every task lists the same parameter shapes in the same order.

    Examples:
        >>> check_same_shapes({'a': [(4, 3), (4,)], 'b': [(4, 3), (4,)]}, 'towers')  # fine
        >>> check_same_shapes({'a': [(4, 3), (4,)], 'b': [(5, 3), (5,)]}, 'towers')
        Traceback (most recent call last):
            ...
        ValueError: towers of task 'b' have shapes [(5, 3), (5,)], but those of task 'a' have [(4, 3), (4,)]: ...
    """
    names = list(shapes)
    first = list(shapes[names[0]])
    for name in names[1:]:
        other = list(shapes[name])
        if other != first:
            raise ValueError(
                f"{what} of task {name!r} have shapes {other}, but those of task "
                f"{names[0]!r} have {first}: the architectures must be identical"
            )


def cross_stitch_init(num_tasks: int, alpha_self: float) -> np.ndarray:
    """The initial ``T x T`` cross-stitch matrix, float32.

    ``alpha_self`` on the diagonal and ``(1 - alpha_self) / (T - 1)`` off it,
    so each row sums to one: Misra et al. (CVPR 2016) start from a convex
    combination that favours each task's own activations (their (0.9, 0.1)).

    Examples:
        >>> cross_stitch_init(3, alpha_self=0.8)
        array([[0.8, 0.1, 0.1],
               [0.1, 0.8, 0.1],
               [0.1, 0.1, 0.8]], dtype=float32)
    """
    num_tasks = positive_int(num_tasks, "number of tasks")
    if num_tasks < 2:
        raise ValueError("cross-stitch units need at least two tasks")
    if isinstance(alpha_self, bool) or not isinstance(alpha_self, (int, float, np.floating)):
        raise TypeError(f"alpha_self must be a number, got {alpha_self!r}")
    if not 0.0 <= alpha_self <= 1.0:
        raise ValueError(f"alpha_self must lie in [0, 1], got {alpha_self}")
    off = (1.0 - alpha_self) / (num_tasks - 1)
    matrix = np.full((num_tasks, num_tasks), off, dtype=np.float64)
    np.fill_diagonal(matrix, alpha_self)
    return matrix.astype(np.float32)
