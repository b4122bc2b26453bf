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

from mtl_course.checks import check_count, check_mapping, check_real, check_task_names, layer_sizes, positive_int

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "identity")
COUPLINGS = ("l2", "trace_norm", "weight_decay")


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
    alpha_self = check_real(alpha_self, "alpha_self", 0.0, 1.0)
    off = (1.0 - alpha_self) / (num_tasks - 1)
    matrix = np.full((num_tasks, num_tasks), off, dtype=np.float64)
    np.fill_diagonal(matrix, alpha_self)
    return matrix.astype(np.float32)


DENSE_TASKS = ("segmentation", "depth")
"""The tasks a dense prediction model can have a decoder for."""


def check_heads(heads: Mapping[str, object] | None, task_names: Sequence[str]) -> dict:
    """Optional task heads of a wrapped model: a mapping whose names are among ``task_names`` ({} for None).

    Examples:
        >>> check_heads({'price': 'head'}, ['price', 'kind'])
        {'price': 'head'}
        >>> check_heads({'size': 'head'}, ['price'])
        Traceback (most recent call last):
            ...
        ValueError: heads names task(s) ['size'] that are not in tasks ['price']
    """
    if heads is None:
        return {}
    heads = check_mapping(heads, "heads")
    unknown = [n for n in heads if n not in task_names]
    if unknown:
        raise ValueError(f"heads names task(s) {unknown} that are not in tasks {list(task_names)}")
    return heads


def cross_stitch_parts(towers: Mapping[str, object], heads: Mapping[str, object] | None, layer_type: type,
                       kind: str) -> tuple[dict[str, list], dict | None, int]:
    """A cross-stitch network's towers (lists of stages, all of one depth) and heads, checked.

    ``layer_type`` is the framework's layer class, named ``kind`` in messages.
    Returns ``(stages per task, heads or None, depth)``.

    Examples:
        >>> cross_stitch_parts({'a': [1, 2], 'b': [3, 4]}, None, int, 'int')
        ({'a': [1, 2], 'b': [3, 4]}, None, 2)
        >>> cross_stitch_parts({'a': [1, 2], 'b': [3]}, None, int, 'int')
        Traceback (most recent call last):
            ...
        ValueError: every tower needs the same number of stages, got {'a': 2, 'b': 1}
    """
    names = list(towers)
    columns = {}
    for name, stages in towers.items():
        try:
            stages = list(stages)
        except TypeError:  # a single layer that is not a container of stages
            raise TypeError(f"towers[{name!r}] must be a list of {kind}s (the stages), "
                            f"got a {type(stages).__name__}") from None
        if not stages or not all(isinstance(s, layer_type) for s in stages):
            raise TypeError(f"towers[{name!r}] must be a non-empty sequence of {kind} stages")
        columns[name] = stages
    depths = {name: len(stages) for name, stages in columns.items()}
    if len(set(depths.values())) != 1:
        raise ValueError(f"every tower needs the same number of stages, got {depths}")
    if heads is not None:
        heads = check_mapping(heads, "heads")
        if list(heads) != names:
            raise ValueError(f"heads must have the towers' tasks in the same order, got {list(heads)} vs {names}")
        if not all(isinstance(h, layer_type) for h in heads.values()):
            raise TypeError(f"every head must be a {kind}")
    return columns, heads, depths[names[0]]


def esmm_sizes(input_dim: int, bottom_hidden: int | Sequence[int],
               tower_hidden: int | Sequence[int]) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """ESMM's checked layer sizes: ``(input_dim, bottom mlp sizes, tower mlp sizes)`` (both towers alike).

    Examples:
        >>> esmm_sizes(6, bottom_hidden=8, tower_hidden=4)
        (6, (6, 8), (8, 4, 1))
    """
    input_dim = positive_int(input_dim, "input_dim")
    bottom = layer_sizes(bottom_hidden, "bottom_hidden", allow_empty=False)
    tower = layer_sizes(tower_hidden, "tower_hidden")
    return input_dim, (input_dim, *bottom), (bottom[-1], *tower, 1)


def outputs_by_task(out: object, task_names: Sequence[str], is_tensor: bool) -> dict:
    """A wrapped module's output as ``task name -> output``: from a dict (by name), a tuple or list
    (in task order), or one tensor (``is_tensor``: the framework says so) for one task.

    Examples:
        >>> outputs_by_task(('p', 'k'), ['price', 'kind'], is_tensor=False)
        {'price': 'p', 'kind': 'k'}
        >>> outputs_by_task({'kind': 'k', 'price': 'p'}, ['price', 'kind'], is_tensor=False)
        {'price': 'p', 'kind': 'k'}
    """
    if isinstance(out, Mapping):
        missing = [n for n in task_names if n not in out]
        if missing:
            raise ValueError(f"the module's output dict has no task(s) {missing}")
        return {n: out[n] for n in task_names}
    if is_tensor:
        out = (out,)
    if not isinstance(out, (tuple, list)) or len(out) != len(task_names):
        raise ValueError(f"the module returned {len(out) if isinstance(out, (tuple, list)) else type(out).__name__}"
                         f" outputs for {len(task_names)} tasks {list(task_names)}: return one "
                         "output per task, in that order")
    return dict(zip(task_names, out))


def mmoe_sizes(input_dim: int, num_experts: int, expert_hidden: int | Sequence[int], num_tasks: int,
               num_gates: int | None) -> tuple[int, int, tuple[int, ...], int]:
    """MMoE's checked sizes: ``(input_dim, num_experts, expert_hidden, num_gates)``; ``num_gates``
    None means one gate per task (MMoE), 1 one gate for all (the one-gate MoE baseline).

    Examples:
        >>> mmoe_sizes(6, 3, 8, num_tasks=2, num_gates=None)
        (6, 3, (8,), 2)
    """
    input_dim = positive_int(input_dim, "input_dim")
    num_experts = positive_int(num_experts, "num_experts")
    expert_hidden = layer_sizes(expert_hidden, "expert_hidden", allow_empty=False)
    if num_gates is None:
        num_gates = num_tasks
    if num_gates not in (1, num_tasks):
        raise ValueError(f"num_gates must be None, 1 or the number of tasks ({num_tasks}), got {num_gates}")
    return input_dim, num_experts, expert_hidden, num_gates


def ple_sizes(input_dim: int, num_shared_experts: int, num_task_experts: int, num_levels: int,
              expert_hidden: int | Sequence[int]) -> tuple[int, int, int, int, tuple[int, ...]]:
    """PLE's checked sizes: ``(input_dim, num_shared_experts, num_task_experts, num_levels, expert_hidden)``.

    Examples:
        >>> ple_sizes(6, 1, 2, 1, [16, 8])
        (6, 1, 2, 1, (16, 8))
    """
    return (positive_int(input_dim, "input_dim"), positive_int(num_shared_experts, "num_shared_experts"),
            positive_int(num_task_experts, "num_task_experts"), positive_int(num_levels, "num_levels"),
            layer_sizes(expert_hidden, "expert_hidden", allow_empty=False))


def check_dense_config(in_channels: int, num_classes: int, width: int, tasks: Sequence[str]) -> tuple[str, ...]:
    """Validate the arguments of ``dense_prediction_model`` (shared by the torch and tf twins).

    Examples:
        >>> check_dense_config(3, 4, 8, ["segmentation", "depth"])
        ('segmentation', 'depth')
        >>> check_dense_config(3, 4, 8, ["normals"])
        Traceback (most recent call last):
            ...
        ValueError: unknown dense task(s) ['normals']; use some of ('segmentation', 'depth')
    """
    for value, name, minimum in ((in_channels, "in_channels", 1), (num_classes, "num_classes", 2), (width, "width", 1)):
        check_count(value, name, minimum)
    tasks = check_task_names(tasks)
    unknown = [t for t in tasks if t not in DENSE_TASKS]
    if unknown:
        raise ValueError(f"unknown dense task(s) {unknown}; use some of {DENSE_TASKS}")
    return tasks
