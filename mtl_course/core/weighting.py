"""Framework-free math of the loss weightings (chapter 7), shared by the twins.

:mod:`mtl_course.torch.weighting` and :mod:`mtl_course.tf.weighting` only
stack the task losses into a tensor and form ``sum_i w_i L_i``; every rule
that decides the weights ``w`` lives here, in numpy, once:

* :class:`TaskOrder` puts task losses (a dict or a sequence) in task order and
  rejects wrong counts and unknown names;
* :class:`WeightingBase` is the bookkeeping both twins' ``Weighting`` derive
  from (task binding, logged weights, ``compute_weights``, state hooks), with
  :class:`DWABase` and :class:`RLWBase` for the state of DWA and RLW;
* :func:`dwa_weights` and :class:`EpochAverages` (Dynamic Weight Average), :func:`rlw_weights` (RLW),
  :func:`gradnorm_gradient` and :func:`gradnorm_update` (GradNorm's weight step, with
  :class:`Adam`) and the uncertainty
  weighting helpers :func:`uncertainty_factors`,
  :func:`uncertainty_multipliers` and :func:`uncertainty_optimum`.

Every function validates its input and raises ``ValueError`` naming the
problem (and the task, where there is one) instead of returning NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtl_course.checks import as_generator

KINDS = ("regression", "classification")
"""Task kinds understood by the uncertainty weighting."""


# ---------------------------------------------------------------- task order
class TaskOrder:
    """The tasks a weighting was built for, and the order of its weights.

    Built from task names (a sequence of str, or a mapping whose keys are the
    names), a task count (int), or ``None`` (bound later, by :meth:`bind` or by
    the first call). Called on losses given as a mapping ``name -> loss`` it
    returns them in task order; given as a sequence, it only checks the count.

    Examples:
        >>> order = TaskOrder(['a', 'b'])
        >>> order.arrange({'b': 2.0, 'a': 1.0})  # the losses in task order
        [1.0, 2.0]
        >>> order.names
        ('a', 'b')
    """

    def __init__(self, tasks: Sequence[str] | Mapping[str, Any] | int | None = None) -> None:
        self.names: tuple[str, ...] | None = None
        self.count: int | None = None
        if tasks is not None:
            self.bind(tasks)

    def bind(self, tasks: Sequence[str] | Mapping[str, Any] | int) -> None:
        """Fix the tasks; binding again to the same tasks is a no-op."""
        names, count = _parse_tasks(tasks)
        if self.count is not None and count != self.count:
            raise ValueError(f"built for {self.count} tasks, got {count}")
        if names is not None and self.names is not None and names != self.names:
            raise ValueError(f"built for tasks {list(self.names)}, got {list(names)}")
        self.count = count
        if names is not None:
            self.names = names

    def arrange(self, losses: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
        """The losses as a list in task order (binds on the first call)."""
        if isinstance(losses, Mapping):
            given = tuple(losses)
            if given == self.names:  # the common case: already in task order
                return list(losses.values())
            if not given:
                raise ValueError("no task losses given (empty mapping)")
            if any(not isinstance(name, str) for name in given):
                raise TypeError("task names must be strings")
            if self.names is None:
                self.bind(given)
                return [losses[name] for name in given]
            unknown = [name for name in given if name not in self.names]
            if unknown:
                raise ValueError(f"unknown task(s) {unknown}; expected {list(self.names)}")
            missing = [name for name in self.names if name not in losses]
            if missing:
                raise ValueError(f"missing loss for task(s) {missing}")
            return [losses[name] for name in self.names]
        if isinstance(losses, (str, bytes)) or not isinstance(losses, Sequence):
            raise TypeError(
                "losses must be a mapping task name -> scalar loss or a sequence of "
                f"scalar losses, got {type(losses).__name__}"
            )
        if len(losses) == 0:
            raise ValueError("no task losses given (empty sequence)")
        if self.count is None:
            self.bind(len(losses))
        elif len(losses) != self.count:
            raise ValueError(f"expected {self.count} task losses, got {len(losses)}")
        return list(losses)

    def label(self, i: int) -> str:
        """A name for task ``i`` in error messages."""
        return repr(self.names[i]) if self.names is not None else f"#{i}"

    def state(self) -> dict[str, str]:
        return {"task_names": json.dumps(None if self.names is None else list(self.names)),
                "task_count": json.dumps(self.count)}

    def load_state(self, state: Mapping[str, Any]) -> None:
        names = json.loads(str(state["task_names"]))
        count = json.loads(str(state["task_count"]))
        if names is not None:
            self.bind(tuple(names))
        elif count is not None:
            self.bind(int(count))


def _parse_tasks(tasks: Any) -> tuple[tuple[str, ...] | None, int]:
    if isinstance(tasks, bool):
        raise TypeError("tasks must be task names or a task count, got a bool")
    if isinstance(tasks, (int, np.integer)):
        if tasks < 1:
            raise ValueError(f"need at least one task, got {int(tasks)}")
        return None, int(tasks)
    if isinstance(tasks, str) or not isinstance(tasks, (Sequence, Mapping)):
        raise TypeError(f"tasks must be a sequence of task names or an int, got {tasks!r}")
    names = tuple(tasks)
    if not names:
        raise ValueError("empty task list: a weighting needs at least one task")
    if any(not isinstance(name, str) for name in names):
        raise TypeError(f"task names must be strings, got {list(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate task names in {list(names)}")
    return names, len(names)


def check_finite_losses(values: np.ndarray, order: TaskOrder) -> None:
    """Raise ``ValueError`` naming every task whose loss is NaN or infinite.

    Examples:
        >>> import numpy as np
        >>> check_finite_losses(np.array([1.0, np.nan]), TaskOrder(['price', 'kind']))
        Traceback (most recent call last):
            ...
        ValueError: non-finite (NaN or inf) loss for task(s) 'kind'
    """
    bad = [order.label(i) for i, v in enumerate(np.asarray(values, dtype=np.float64))
           if not np.isfinite(v)]
    if bad:
        raise ValueError(f"non-finite (NaN or inf) loss for task(s) {', '.join(bad)}")


def check_nonnegative_losses(values: np.ndarray | Sequence[float], order: TaskOrder, method: str,
                              reason: str) -> None:
    """Raise ``ValueError`` naming every task whose loss is negative (``method`` needs ``L >= 0``).

    Examples:
        >>> import numpy as np
        >>> check_nonnegative_losses(np.array([1.0, -0.5]), TaskOrder(['price', 'kind']), 'DWA', 'loss ratios')
        Traceback (most recent call last):
            ...
        ValueError: DWA needs non-negative losses (loss ratios); negative loss for task(s) 'kind' (-0.5)
    """
    bad = [f"{order.label(i)} ({v:.4g})" for i, v in enumerate(np.asarray(values, dtype=np.float64)) if v < 0]
    if bad:
        raise ValueError(f"{method} needs non-negative losses ({reason}); negative loss for "
                         f"task(s) {', '.join(bad)}")


def checked_weights(weights: object, num_tasks: int | None) -> np.ndarray:
    """Task weights from a custom weighting as a float64 vector, refusing a wrong length or NaN/inf.

    Examples:
        >>> checked_weights([1, 2], num_tasks=2)
        array([1., 2.])
        >>> checked_weights([1.0], num_tasks=2)
        Traceback (most recent call last):
            ...
        ValueError: a weighting must give one weight per task (2), got shape (1,)
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if num_tasks is not None and w.shape != (num_tasks,):
        raise ValueError(f"a weighting must give one weight per task ({num_tasks}), got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"task weights must be finite, got {w}")
    return w


def static_weights(weights: Mapping[str, float] | Sequence[float]) -> tuple[tuple[str, ...] | None, np.ndarray]:
    """Validate fixed loss weights: returns ``(task names or None, weights)``.

    Examples:
        >>> static_weights({'a': 0.25, 'b': 0.75})
        (('a', 'b'), array([0.25, 0.75]))
        >>> static_weights([1.0, 2.0])
        (None, array([1., 2.]))
    """
    if isinstance(weights, Mapping):
        names, count = _parse_tasks(tuple(weights))
        values = [weights[name] for name in names]
    else:
        names = None
        values = list(weights)
        if not values:
            raise ValueError("empty task list: static weights need at least one weight")
    w = np.asarray(values, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"static weights must be scalars, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"static weights must be finite, got {w.tolist()}")
    if np.any(w < 0):
        raise ValueError(f"static weights must be non-negative, got {w.tolist()}")
    return names, w


# ------------------------------------------------------- the weighting base
class WeightingBase:
    """The framework-free part of a loss weighting, shared by both twins' ``Weighting``.

    :class:`mtl_course.torch.weighting.Weighting` (an ``nn.Module``) and
    :class:`mtl_course.tf.weighting.Weighting` (a ``tf.Module``) derive from
    it: it holds the task binding (a :class:`TaskOrder`), the logged weights
    and the last loss values, and the hooks a subclass fills in
    (:meth:`compute_weights`, :meth:`end_epoch`, ``_initial_weights``,
    ``_core_state``). The twins add what needs their framework: stacking the
    losses into a tensor and forming ``sum_i w_i L_i`` (``forward`` in
    PyTorch, ``__call__`` in TensorFlow), and saving the state.

    Examples:
        >>> import numpy as np
        >>> class InverseLoss(WeightingBase):
        ...     def compute_weights(self, losses):
        ...         return len(losses) * (1 / losses) / (1 / losses).sum()
        >>> InverseLoss().compute_weights(np.array([1.0, 3.0]))
        array([1.5, 0.5])
    """

    #: the twin's method that forms the total loss, named in messages
    _total_method = "forward"

    def _start(self, tasks: Sequence[str] | int | None) -> None:
        """Set up the bookkeeping (the twin's ``__init__`` calls it after its framework's)."""
        self._order = TaskOrder(tasks)
        self._weights: np.ndarray | None = None
        self._values: Sequence[float] | None = None  # the last loss values, task order

    @property
    def task_names(self) -> tuple[str, ...] | None:
        return self._order.names

    @property
    def num_tasks(self) -> int | None:
        return self._order.count

    def bind(self, tasks: Sequence[str] | int) -> WeightingBase:
        """Fix the tasks (a no-op if already bound to the same ones)."""
        self._order.bind(tasks)
        return self

    @property
    def weights(self) -> np.ndarray | None:
        """The current task weights (float64, task order); None before the tasks are known."""
        if self._weights is None and self.num_tasks is not None:
            self._weights = self._initial_weights(self.num_tasks)
        return None if self._weights is None else self._weights.copy()

    @weights.setter
    def weights(self, value: np.ndarray) -> None:
        """Set the logged weights (a custom total that computes its own weights sets them here)."""
        self._weights = checked_weights(value, self.num_tasks)

    def _initial_weights(self, num_tasks: int) -> np.ndarray:
        return np.ones(num_tasks)

    def compute_weights(self, losses: np.ndarray) -> np.ndarray:
        """Your own weighting: return the weights ``w`` (one per task) from the loss values.

        Override this in a subclass of a twin's ``Weighting`` and its default
        total (``forward`` in PyTorch, ``__call__`` in TensorFlow) returns
        ``sum_i w_i L_i`` and logs ``w`` (``.weights``, ``History.weights``);
        ``losses`` are the current values (float64 numpy, task order). A
        subclass that overrides the total instead (for learnable weights)
        sets ``self.weights = w`` there to log them. (The twins' ``Weighting``
        docstrings show a subclass at work.)
        """
        raise NotImplementedError(
            f"a Weighting subclass overrides compute_weights(losses) -> weights (or {self._total_method})")

    def _weights_from_losses(self) -> np.ndarray:
        """:meth:`compute_weights` on the last loss values, checked and logged."""
        self.weights = self.compute_weights(np.array(self._values, dtype=np.float64))
        return self._weights

    def _keep_values(self, values: Sequence[float]) -> None:
        """Keep a step's loss values (task order) after checking that they are finite."""
        if not all(map(math.isfinite, values)):
            check_finite_losses(np.asarray(values, dtype=np.float64), self._order)
        self._values = values

    def end_epoch(self) -> None:
        """Called by the training loop after each epoch (used by DWA)."""

    # The state beyond the framework's variables, as plain values (str, numpy arrays) that both
    # twins can store without pickle: the task binding and what _core_state adds.
    def _core_state(self) -> dict[str, Any]:
        return {}

    def _load_core_state(self, state: Mapping[str, Any]) -> None:
        pass

    def _plain_state(self) -> dict[str, Any]:
        return {**self._order.state(), **self._core_state()}

    def _load_plain_state(self, state: Mapping[str, Any]) -> None:
        self._order.load_state(state)
        self._load_core_state(state)


# --------------------------------------------------------------- small tools
def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax of a 1-D array (float64).

    Examples:
        >>> import numpy as np
        >>> softmax(np.array([0.0, np.log(3.0)]))
        array([0.25, 0.75])
        >>> softmax(np.array([1000.0, 1000.0]))  # no overflow
        array([0.5, 0.5])
    """
    z = np.asarray(x, dtype=np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def generator_state(generator: np.random.Generator) -> str:
    """The bit generator's state as a JSON string (safe to store without pickle).

    Examples:
        >>> import numpy as np
        >>> import json
        >>> rng = as_generator(0)
        >>> json.loads(generator_state(rng))['bit_generator']
        'PCG64'
    """
    return json.dumps(generator.bit_generator.state)


def set_generator_state(generator: np.random.Generator, state: str) -> None:
    """Restore a state from :func:`generator_state`: the generator then repeats its draws.

    Examples:
        >>> rng = as_generator(0)
        >>> saved = generator_state(rng)
        >>> first = rng.random()
        >>> set_generator_state(rng, saved)
        >>> rng.random() == first
        True
    """
    generator.bit_generator.state = json.loads(str(state))


# ----------------------------------------------------------------------- DWA
def dwa_weights(loss_history: np.ndarray, temperature: float = 2.0) -> np.ndarray:
    """Dynamic Weight Average weights for the next epoch.

    Liu, Johns, Davison, "End-to-End Multi-Task Learning with Attention",
    CVPR 2019, eq. (7)::

        w_i(k) = T exp(r_i(k-1) / tau) / sum_j exp(r_j(k-1) / tau),
        r_i(k-1) = L_i(k-1) / L_i(k-2),

    with ``L_i(k)`` the average training loss of task i over epoch k, ``T``
    the number of tasks, so the weights sum to T, and ``tau`` the temperature
    (the paper writes K for the number of tasks and T for the temperature; the
    course keeps T for the number of tasks). With fewer than two past epochs
    the weights are all 1 (the paper's initialisation).

    Args:
        loss_history: shape ``(epochs, T)``, epoch-average losses, oldest first.
        temperature: the temperature ``tau > 0``; larger tau gives more even weights.

    Examples:
        >>> import numpy as np
        >>> history = np.array([[1.0, 1.0], [0.5, 1.0]])  # epoch-average losses, oldest first
        >>> dwa_weights(history, temperature=2.0).round(4)  # the slower task gets more weight
        array([0.8756, 1.1244])
    """
    if not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"DWA temperature must be positive and finite, got {temperature}")
    history = np.asarray(loss_history, dtype=np.float64)
    if history.ndim != 2 or history.shape[1] == 0:
        raise ValueError(f"loss_history must have shape (epochs, tasks), got {history.shape}")
    num_tasks = history.shape[1]
    if len(history) < 2:
        return np.ones(num_tasks)
    previous, before = history[-1], history[-2]
    if not (np.all(np.isfinite(previous)) and np.all(np.isfinite(before))):
        raise ValueError("DWA needs finite epoch losses")
    if np.any(before <= 0):
        bad = np.flatnonzero(before <= 0).tolist()
        raise ValueError(f"DWA needs positive epoch losses; task(s) {bad} had loss <= 0")
    return num_tasks * softmax(previous / before / temperature)


class EpochAverages:
    """Per-epoch average task losses, accumulated step by step (DWA's input).

    :meth:`add` one loss vector per step; :meth:`end_epoch` closes the epoch
    and appends its mean to ``history`` (oldest first). Every call counts
    equally; LibMTL's ``DWA`` weights each batch's losses by its batch size,
    which differs only when batches differ in size (a smaller last batch).

    Examples:
        >>> import numpy as np
        >>> averages = EpochAverages()
        >>> averages.add([1.0, 4.0])
        >>> averages.add([3.0, 2.0])
        >>> averages.end_epoch()
        array([2., 3.])
        >>> averages.history
        [array([2., 3.])]
    """

    def __init__(self) -> None:
        self.history: list[np.ndarray] = []
        self._sum: np.ndarray | None = None
        self._steps = 0

    def add(self, values: Sequence[float] | np.ndarray) -> None:
        self._sum = np.array(values, dtype=np.float64) if self._sum is None else self._sum + values
        self._steps += 1

    def end_epoch(self) -> np.ndarray:
        if self._steps == 0:
            raise ValueError("DWA.end_epoch() called with no losses recorded in this epoch")
        self.history.append(self._sum / self._steps)
        self._sum, self._steps = None, 0
        return self.history[-1]

    def state(self, num_tasks: int) -> dict[str, np.ndarray]:
        # reshape(len, T), not (-1, T): an unbound weighting (T = 0) has an empty (0, 0) history
        return {"history": np.array(self.history, dtype=np.float64).reshape(len(self.history), num_tasks),
                "epoch_sum": np.zeros(num_tasks) if self._sum is None else self._sum.copy(),
                "epoch_steps": np.int64(self._steps)}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.history = [row.copy() for row in np.asarray(state["history"], dtype=np.float64)]
        self._steps = int(state["epoch_steps"])
        self._sum = np.asarray(state["epoch_sum"], dtype=np.float64).copy() if self._steps else None


class DWABase(WeightingBase):
    """The framework-free part of both twins' ``DWA``: the epoch averages, the next weights, the state.

    Examples:
        >>> weighting = DWABase()
        >>> weighting._start(["a", "b"])
        >>> weighting._start_dwa(temperature=2.0)
        >>> for losses in ([1.0, 1.0], [0.5, 1.0]):
        ...     weighting._averages.add(losses)
        ...     weighting.end_epoch()
        >>> weighting.weights.round(4)
        array([0.8756, 1.1244])
    """

    def _start_dwa(self, temperature: float) -> None:
        if not temperature > 0:
            raise ValueError(f"DWA temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self._averages = EpochAverages()

    def end_epoch(self) -> None:
        """Close the epoch: store its average losses and compute the next weights."""
        self._averages.end_epoch()
        self._weights = dwa_weights(np.stack(self._averages.history[-2:]), self.temperature)

    def _core_state(self) -> dict[str, Any]:
        return self._averages.state(self.num_tasks or 0)

    def _load_core_state(self, state: Mapping[str, Any]) -> None:
        self._averages.load_state(state)
        history = self._averages.history
        self._weights = dwa_weights(np.stack(history[-2:]), self.temperature) if history else None


# ----------------------------------------------------------------------- RLW
RLW_DISTRIBUTIONS = ("normal", "uniform")


def rlw_weights(generator: np.random.Generator, num_tasks: int, distribution: str = "normal") -> np.ndarray:
    """One Random Loss Weighting draw.

    Lin, Ye, Zhang and Tsang, "Reasonable Effectiveness of Random Weighting: A
    Litmus Test for Multi-Task Learning", TMLR 2022: at every step draw
    ``lambda ~ p(lambda)`` and use the weights ``softmax(lambda)`` (they sum to
    1). ``distribution="normal"`` draws ``lambda ~ N(0, I)`` (the paper's
    default), ``"uniform"`` draws ``lambda ~ U(0, 1)^T`` (T tasks). The draws come from a
    numpy Generator so that the PyTorch and TensorFlow twins draw the same
    weights from the same seed.

    Examples:
        >>> import numpy as np
        >>> w = rlw_weights(np.random.default_rng(0), num_tasks=3)
        >>> w.round(4), round(float(w.sum()), 6)
        (array([0.2902, 0.2242, 0.4855]), 1.0)
    """
    if distribution == "normal":
        return softmax(generator.standard_normal(num_tasks))
    if distribution == "uniform":
        return softmax(generator.random(num_tasks))
    raise ValueError(f"unknown RLW distribution {distribution!r}; use one of {RLW_DISTRIBUTIONS}")


class RLWBase(WeightingBase):
    """The framework-free part of both twins' ``RLW``: the generator, the draws, the state.

    Examples:
        >>> weighting = RLWBase()
        >>> weighting._start(["a", "b"])
        >>> weighting._start_rlw("normal", generator=0)
        >>> weighting.weights  # uniform before the first draw
        array([0.5, 0.5])
        >>> weighting._draw(2).round(4)
        array([0.5641, 0.4359])
    """

    def _start_rlw(self, distribution: str, generator: np.random.Generator | int | None) -> None:
        if distribution not in RLW_DISTRIBUTIONS:
            raise ValueError(f"unknown RLW distribution {distribution!r}; use one of {RLW_DISTRIBUTIONS}")
        self.distribution = distribution
        self.generator = as_generator(generator)

    def _initial_weights(self, num_tasks: int) -> np.ndarray:
        return np.full(num_tasks, 1.0 / num_tasks)

    def _draw(self, num_tasks: int) -> np.ndarray:
        """New weights for ``num_tasks`` tasks (kept as the logged weights)."""
        self._weights = rlw_weights(self.generator, num_tasks, self.distribution)
        return self._weights

    def _core_state(self) -> dict[str, Any]:
        last = self.weights
        return {"generator": generator_state(self.generator),
                "last_weights": np.zeros(0) if last is None else last}

    def _load_core_state(self, state: Mapping[str, Any]) -> None:
        set_generator_state(self.generator, state["generator"])
        last = np.asarray(state["last_weights"], dtype=np.float64)
        self._weights = last if last.size else None


# ------------------------------------------------------------------ GradNorm
def gradnorm_gradient(weights: np.ndarray, grad_norms: np.ndarray, losses: np.ndarray,
                      initial_losses: np.ndarray, alpha: float = 1.5) -> np.ndarray:
    """The gradient of GradNorm's loss with respect to the task weights.

    Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization
    for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018::

        G_i = || grad_W (w_i L_i) || = w_i n_i,      n_i = || grad_W L_i ||
        r_i = (L_i(k) / L_i(0)) / mean_j (L_j(k) / L_j(0))
        L_grad = sum_i | G_i - mean_j(G_j) * r_i ** alpha |

    with the target ``mean(G) r_i^alpha`` held constant (eq. 2 of the paper).
    Because ``G_i`` is linear in ``w_i``, ``dL_grad/dw_i = sign(G_i - target_i) n_i``
    in closed form, so the gradient needs only the numbers ``n_i``.

    Args:
        weights: current ``w`` (T,) for T tasks, positive.
        grad_norms: ``n_i`` (T,), non-negative.
        losses: ``L_i(k)`` (T,) at step k, non-negative; initial_losses: ``L_i(0)`` (T,), positive.
    Returns:
        ``dL_grad/dw`` (T,), float64.

    Examples:
        >>> import numpy as np
        >>> norms, losses = np.array([1.0, 3.0]), np.ones(2)  # G = (1, 3), target mean(G) = 2
        >>> gradnorm_gradient(np.ones(2), grad_norms=norms, losses=losses, initial_losses=losses)
        array([-1.,  3.])
    """
    w = np.asarray(weights, dtype=np.float64)
    n = np.asarray(grad_norms, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    loss0 = np.asarray(initial_losses, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be a non-empty finite vector, got {w.tolist()}")
    k = w.shape[0]
    for name, a in (("grad_norms", n), ("losses", loss), ("initial_losses", loss0)):
        if a.shape != (k,):
            raise ValueError(f"{name} must have shape ({k},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite, got {a.tolist()}")
    if np.any(n < 0):
        raise ValueError(f"gradient norms must be non-negative, got {n.tolist()}")
    if np.any(loss0 <= 0):
        bad = np.flatnonzero(loss0 <= 0).tolist()
        raise ValueError(f"GradNorm needs positive initial losses; task(s) {bad} started at <= 0")
    if np.any(loss < 0):  # r_i ** alpha of a negative training rate is NaN
        bad = np.flatnonzero(loss < 0).tolist()
        raise ValueError(
            f"GradNorm needs non-negative losses (its training rate L_i(k) / L_i(0) must be >= 0); "
            f"task(s) {bad} have loss {loss[loss < 0].tolist()}"
        )
    ratio = loss / loss0
    mean_ratio = ratio.mean()
    # All current losses zero: every task trains at the same rate, r_i = 1.
    rate = ratio / mean_ratio if mean_ratio > 0 else np.ones(k)
    g = w * n
    target = g.mean() * rate ** alpha
    return np.sign(g - target) * n


class Adam:
    """Adam (Kingma and Ba, ICLR 2015) on one small float64 vector, in numpy.

    GradNorm's weights are trained by an optimizer on ``dL_grad/dw``; doing
    it here, in numpy, gives both twins the same weights to rounding::

        m <- b1 m + (1 - b1) g,        v <- b2 v + (1 - b2) g^2,
        x <- x - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    The step is about ``lr`` per coordinate whatever the scale of ``g``
    (the first step is exactly ``lr sign(g)`` up to ``eps``).

    Examples:
        >>> import numpy as np
        >>> adam = Adam()
        >>> adam.step(np.zeros(2), np.array([-3.0, 1e4]), lr=0.1).round(6)  # the first step: lr sign(g)
        array([ 0.1, -0.1])
    """

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        b1, b2 = (float(b) for b in betas)
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam betas must lie in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"Adam eps must be positive, got {eps}")
        self.betas, self.eps = (b1, b2), float(eps)
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.t = 0

    def step(self, x: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
        """The new ``x`` after one Adam step on the gradient ``grad``."""
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(grad, dtype=np.float64)
        if g.shape != x.shape:
            raise ValueError(f"gradient shape {g.shape} does not match the parameter shape {x.shape}")
        if self.m is None or self.m.shape != x.shape:
            self.m, self.v, self.t = np.zeros_like(x), np.zeros_like(x), 0
        b1, b2 = self.betas
        self.t += 1
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        m_hat = self.m / (1 - b1 ** self.t)
        v_hat = self.v / (1 - b2 ** self.t)
        return x - lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self, size: int) -> dict[str, np.ndarray]:
        empty = np.zeros(size)
        return {"adam_m": empty if self.m is None else self.m.copy(),
                "adam_v": empty if self.v is None else self.v.copy(),
                "adam_t": np.int64(self.t)}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.t = int(state.get("adam_t", 0))
        if self.t == 0:
            self.m = self.v = None
        else:
            self.m = np.asarray(state["adam_m"], dtype=np.float64).copy()
            self.v = np.asarray(state["adam_v"], dtype=np.float64).copy()


def gradnorm_update(weights: np.ndarray, grad_norms: np.ndarray, losses: np.ndarray,
                    initial_losses: np.ndarray, alpha: float = 1.5, lr: float = 0.025, *,
                    optimizer: Adam) -> np.ndarray:
    """One GradNorm step on the task weights: an Adam step on :func:`gradnorm_gradient`, then renormalise.

    The paper applies ``dL_grad/dw`` "via standard update rules" and then
    renormalises the weights so that ``sum_i w_i = T`` (T tasks) (Chen et al. 2018,
    section 3.2 and Algorithm 1); LibMTL hands the weights to the training
    optimizer. Here ``optimizer`` is an :class:`Adam` that lives as long as
    the weighting: its step is about ``lr`` whatever the tasks' loss scale,
    which a plain step ``lr * sign(...) * n_i`` is not (it grows with the
    gradient norms). A weight pushed to zero or below is clipped to a small
    positive floor (1e-6 of the mean weight) before renormalising, so it can
    recover later.

    Returns:
        the new weights (T,), float64, summing to T.

    Examples:
        >>> import numpy as np
        >>> norms, losses = np.array([1.0, 3.0]), np.ones(2)
        >>> w = gradnorm_update(np.ones(2), norms, losses, losses, lr=0.025, optimizer=Adam())
        >>> w.round(4)  # the first Adam step is lr sign(grad): (1.025, 0.975), already summing to 2
        array([1.025, 0.975])
    """
    w = np.asarray(weights, dtype=np.float64)
    if not lr > 0 or not np.isfinite(lr):
        raise ValueError(f"GradNorm lr must be positive and finite, got {lr}")
    grad = gradnorm_gradient(w, grad_norms, losses, initial_losses, alpha)
    new = optimizer.step(w, grad, lr)
    new = np.maximum(new, 1e-6 * w.mean())
    return w.shape[0] * new / new.sum()


def gradnorm_layer_index(shapes: Sequence[Sequence[int]]) -> int:
    """Which shared parameter GradNorm differentiates: the last one with rank >= 2.

    GradNorm measures gradient norms on "the last shared layer" W; with the
    shared parameters listed trunk-first this is the last weight matrix (or
    kernel). Falls back to the last parameter when none has rank >= 2.

    Examples:
        >>> gradnorm_layer_index([(8, 3), (8,), (4, 8), (4,)])  # the last weight matrix
        2
    """
    if len(shapes) == 0:
        raise ValueError("GradNorm needs at least one shared parameter (the model shares nothing)")
    for i in range(len(shapes) - 1, -1, -1):
        if len(shapes[i]) >= 2:
            return i
    return len(shapes) - 1


# --------------------------------------------------------- uncertainty (UW)
def uncertainty_factors(kinds: str | Sequence[str], num_tasks: int) -> np.ndarray:
    """The factor c_i in ``c_i exp(-s_i) L_i``: 1/2 for regression, 1 for classification.

    Examples:
        >>> uncertainty_factors(['regression', 'classification'], 2)
        array([0.5, 1. ])
    """
    if isinstance(kinds, str):
        kinds = [kinds] * num_tasks
    kinds = list(kinds)
    if len(kinds) != num_tasks:
        raise ValueError(f"got {len(kinds)} kinds for {num_tasks} tasks")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown task kind(s) {unknown}; use {KINDS}")
    return np.array([0.5 if k == "regression" else 1.0 for k in kinds])


def uncertainty_init(init: float) -> float:
    """The initial log-variance ``s_i``, checked to be a finite number.

    Examples:
        >>> uncertainty_init(0)
        0.0
        >>> uncertainty_init(float('inf'))
        Traceback (most recent call last):
            ...
        ValueError: UncertaintyWeighting init (the initial log-variance) must be finite, got inf
    """
    value = float(init)
    if not np.isfinite(value):
        raise ValueError(f"UncertaintyWeighting init (the initial log-variance) must be finite, got {init}")
    return value


UNCERTAINTY_NEEDS = "for L < 0 the objective c exp(-s) L + s / 2 has no minimum: s -> -inf"
"""Why :class:`~mtl_course.torch.weighting.UncertaintyWeighting` (and its TensorFlow twin) rejects negative losses."""


def uncertainty_multipliers(log_vars: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The effective loss weights ``c_i / sigma_i^2 = c_i exp(-s_i)``.

    Examples:
        >>> import numpy as np
        >>> uncertainty_multipliers(np.array([0.0, np.log(2.0)]), np.array([0.5, 1.0]))
        array([0.5, 0.5])
    """
    return np.asarray(factors, dtype=np.float64) * np.exp(-np.asarray(log_vars, dtype=np.float64))


def uncertainty_optimum(losses: Sequence[float] | np.ndarray, kinds: str | Sequence[str] = "regression") -> np.ndarray:
    """The log-variances ``s_i`` that minimise the uncertainty objective for fixed losses.

    Per task the objective is ``f(s) = c exp(-s) L + s / 2`` (c = 1/2 for
    regression, 1 for classification). ``f'(s) = -c exp(-s) L + 1/2 = 0`` gives
    ``exp(s*) = 2 c L``: for regression ``sigma^2 = L``, for classification
    ``sigma^2 = 2 L``; ``f'' = c exp(-s) L > 0`` so it is the minimum. At the
    optimum the effective weight ``c exp(-s*)`` is ``1 / (2 L)``: each loss is
    scaled towards 1/2, which is what balances tasks of different scale.
    Needs ``L > 0`` (for ``L = 0`` the objective has no minimum, s -> -inf).

    Examples:
        >>> import numpy as np
        >>> s = uncertainty_optimum([0.5, 2.0], kinds=['regression', 'classification'])
        >>> np.exp(s).round(6)  # sigma^2 = L (regression), 2 L (classification)
        array([0.5, 4. ])
    """
    loss = np.asarray(losses, dtype=np.float64)
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D array, got shape {loss.shape}")
    if not np.all(np.isfinite(loss)) or np.any(loss <= 0):
        raise ValueError(f"the optimum needs finite positive losses, got {loss.tolist()}")
    return np.log(2 * uncertainty_factors(kinds, loss.size) * loss)
