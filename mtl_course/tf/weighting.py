"""Loss weightings in TensorFlow (chapter 7), twins of :mod:`mtl_course.torch.weighting`.

Same names, arguments and defaults as the PyTorch versions. Each weighting is
a ``tf.Module``: call it on the task losses (a dict ``name -> scalar`` or a
sequence in task order) to get the total loss; ``.weights`` is the current
weight vector (numpy). Learnable state (:class:`UncertaintyWeighting`'s
log-variances) is a ``tf.Variable`` in ``trainable_variables``, so apply the
optimizer to ``model.trainable_variables + weighting.trainable_variables``.
``state_dict()`` returns plain numpy arrays (variables and the numpy-side
state), ``load_state_dict()`` restores them.

The weights are computed eagerly in numpy (:mod:`mtl_course.core.weighting`):
call the weightings eagerly, not inside ``tf.function`` (a traced RLW would
freeze its first draw). :func:`mtl_course.tf.fit <mtl_course.tf.train.fit>` compiles its step anyway for
equal, static, uncertainty, DWA, RLW and GradNorm weighting: it draws the weights on the
host and passes them into the compiled step as a tensor (GradNorm's update runs in the
graph, its state passed in and out as tensors; subclasses of your own run eagerly).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from mtl_course.core import weighting as core
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

Losses = Mapping[str, tf.Tensor] | Sequence[tf.Tensor]
Tasks = Sequence[str] | int | None


class Weighting(core.WeightingBase, tf.Module):
    """Base class: orders and validates the task losses, holds the task binding.

    The bookkeeping (``task_names``, ``num_tasks``, ``bind``, ``weights``,
    ``compute_weights``, ``end_epoch``) is
    :class:`~mtl_course.core.weighting.WeightingBase`'s, shared with the
    PyTorch twin; this class adds the tensors. Your own weighting overrides
    ``compute_weights(losses) -> weights`` (then ``__call__`` returns
    ``sum_i w_i L_i`` and logs ``w``) or ``__call__`` (then it sets
    ``self.weights = w`` to log them).

    Examples:
        >>> import tensorflow as tf
        >>> weighting = EqualWeighting(tasks=['a', 'b'])
        >>> weighting.stack({'b': tf.constant(2.0), 'a': tf.constant(1.0)}).numpy()
        array([1., 2.], dtype=float32)
        >>> class InverseLoss(Weighting):
        ...     def compute_weights(self, losses):
        ...         return len(losses) * (1 / losses) / (1 / losses).sum()
        >>> weighting = InverseLoss(tasks=["a", "b"])
        >>> total = weighting({"a": tf.constant(1.0), "b": tf.constant(3.0)})
        >>> weighting.weights
        array([1.5, 0.5])
    """

    _total_method = "__call__"

    def __init__(self, tasks: Tasks = None) -> None:
        super().__init__()
        self._start(tasks)

    def __call__(self, losses: Losses) -> tf.Tensor:
        """``sum_i w_i L_i`` with ``w = compute_weights(loss values)`` (for subclasses that only
        override :meth:`~mtl_course.core.weighting.WeightingBase.compute_weights`)."""
        stacked = self.stack(losses)
        return self._weighted_sum(stacked, self._weights_from_losses())

    def stack(self, losses: Losses) -> tf.Tensor:
        """The losses as a 1-D tensor in task order, checked to be finite scalars."""
        ordered = self._order.arrange(losses)
        tensors = []
        for i, loss in enumerate(ordered):
            loss = tf.convert_to_tensor(loss)
            if loss.shape.num_elements() != 1:
                raise ValueError(f"loss of task {self._order.label(i)} is not a scalar (shape {loss.shape})")
            tensors.append(tf.reshape(loss, []))
        stacked = tf.stack(tensors)
        self._keep_values(stacked.numpy().astype(np.float64))
        return stacked

    # The protocol of fit's compiled step (mtl_course.tf.train), which cannot run numpy inside the
    # graph: it takes _step_weights() as a tensor argument, builds the total with _graph_total
    # (TensorFlow ops only) and hands the step's losses back to _record on the host.
    def _step_weights(self) -> np.ndarray:
        """The weights of the next step's total loss (RLW draws them here)."""
        return self.weights

    def _graph_total(self, stacked: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        """``sum_i w_i L_i`` from the stacked losses and :meth:`_step_weights`, graph-safe."""
        return tf.reduce_sum(tf.cast(weights, stacked.dtype) * stacked)

    def _record(self, values: np.ndarray) -> None:
        """Keep a compiled step's losses (float64, task order) as an eager call would, after checking them."""
        self._keep_values(values)

    def _weighted_sum(self, stacked: tf.Tensor, weights: np.ndarray) -> tf.Tensor:
        return tf.reduce_sum(tf.constant(weights, dtype=stacked.dtype) * stacked)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Variables and numpy-side state as numpy arrays (strings as 0-d str arrays; no pickle needed)."""
        state = {f"variables/{v.name.split(':')[0]}": v.numpy() for v in self.trainable_variables}
        for key, value in self._plain_state().items():
            state[key] = np.asarray(value)
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for v in self.trainable_variables:
            key = f"variables/{v.name.split(':')[0]}"
            if key not in state:
                raise ValueError(f"state has no {key!r}")
            value = np.asarray(state[key])
            if value.shape != tuple(v.shape):
                raise ValueError(f"{key}: saved shape {value.shape} != {tuple(v.shape)}")
            v.assign(value)
        plain = {k: (v.item() if np.asarray(v).dtype.kind in "US" else np.asarray(v)) for k, v in state.items()}
        self._load_plain_state(plain)


class EqualWeighting(Weighting):
    """Equal weighting: ``L = sum_i L_i`` (the sum, as in :class:`mtl_course.torch.weighting.EqualWeighting`).

    Examples:
        >>> import tensorflow as tf
        >>> weighting = EqualWeighting()
        >>> losses = {'a': tf.constant(1.0), 'b': tf.constant(3.0)}
        >>> float(weighting(losses)), weighting.weights
        (4.0, array([1., 1.]))
    """

    def __call__(self, losses: Losses) -> tf.Tensor:
        return tf.reduce_sum(self.stack(losses))


class StaticWeighting(Weighting):
    """Fixed non-negative weights: ``L = sum_i alpha_i L_i``.

    Examples:
        >>> import tensorflow as tf
        >>> weighting = StaticWeighting({'a': 0.25, 'b': 0.75})
        >>> losses = {'a': tf.constant(1.0), 'b': tf.constant(3.0)}
        >>> float(weighting(losses))
        2.5
    """

    def __init__(self, weights: Mapping[str, float] | Sequence[float]) -> None:
        names, w = core.static_weights(weights)
        super().__init__(names if names is not None else len(w))
        self._weights = w

    def __call__(self, losses: Losses) -> tf.Tensor:
        return self._weighted_sum(self.stack(losses), self._weights)


class UncertaintyWeighting(Weighting):
    """Homoscedastic uncertainty weighting (Kendall, Gal, Cipolla, CVPR 2018, eq. 7 and 10).

    ``exp(-s_i) L_i / 2 + s_i / 2`` (regression) or ``exp(-s_i) L_i + s_i / 2``
    (classification), ``s_i = log sigma_i^2`` a ``tf.Variable`` named
    ``log_vars``; see the PyTorch twin for the derivation and conventions.

    Examples:
        >>> import tensorflow as tf
        >>> weighting = UncertaintyWeighting(['a', 'b'])
        >>> losses = {'a': tf.constant(1.0), 'b': tf.constant(3.0)}
        >>> round(float(weighting(losses)), 4), weighting.weights  # s_i = 0: L_1/2 + L_2/2
        (2.0, array([0.5, 0.5]))
        >>> len(weighting.trainable_variables)  # the log-variances, trained with the model
        1
    """

    def __init__(self, tasks: Sequence[str] | int, kinds: str | Sequence[str] = "regression",
                 init: float = 0.0) -> None:
        if tasks is None:
            raise ValueError("UncertaintyWeighting needs its tasks (names or a count) up front")
        super().__init__(tasks)
        self.factors = core.uncertainty_factors(kinds, self.num_tasks)
        self.kinds = tuple(kinds) if not isinstance(kinds, str) else (kinds,) * self.num_tasks
        self.log_vars = tf.Variable(tf.fill([self.num_tasks], tf.constant(core.uncertainty_init(init), tf.float32)),
                                    name="log_vars")

    @property
    def weights(self) -> np.ndarray:
        return core.uncertainty_multipliers(self.log_vars.numpy(), self.factors)

    def __call__(self, losses: Losses) -> tf.Tensor:
        stacked = self.stack(losses)
        self._check_nonnegative()
        return self._graph_total(stacked, None)

    def _record(self, values: np.ndarray) -> None:
        super()._record(values)
        self._check_nonnegative()

    def _check_nonnegative(self) -> None:
        if self._values.min() < 0:
            core.check_nonnegative_losses(self._values, self._order, "UncertaintyWeighting", core.UNCERTAINTY_NEEDS)

    def _graph_total(self, stacked: tf.Tensor, weights: tf.Tensor | None) -> tf.Tensor:
        s = tf.cast(self.log_vars, stacked.dtype)
        c = tf.constant(self.factors, dtype=stacked.dtype)
        return tf.reduce_sum(c * tf.exp(-s) * stacked + 0.5 * s)


class DWA(core.DWABase, Weighting):
    """Dynamic Weight Average (Liu, Johns, Davison, CVPR 2019); call ``end_epoch()`` after each epoch.

    The epoch average is the plain mean over calls, as in the PyTorch twin
    (LibMTL's weights each batch by its size).

    Examples:
        >>> import tensorflow as tf
        >>> weighting = DWA(temperature=2.0)
        >>> for epoch_losses in ([1.0, 1.0], [1.0, 1.0], [0.5, 1.0]):  # epochs 1-2 use equal weights
        ...     total = weighting({'a': tf.constant(epoch_losses[0]), 'b': tf.constant(epoch_losses[1])})
        ...     weighting.end_epoch()
        >>> weighting.weights.round(4)
        array([0.8756, 1.1244])
    """

    def __init__(self, temperature: float = 2.0, tasks: Tasks = None) -> None:
        super().__init__(tasks)
        self._start_dwa(temperature)

    def __call__(self, losses: Losses) -> tf.Tensor:
        stacked = self.stack(losses)
        self._averages.add(self._values)
        return self._weighted_sum(stacked, self.weights)

    def _record(self, values: np.ndarray) -> None:
        super()._record(values)
        self._averages.add(self._values)


class RLW(core.RLWBase, Weighting):
    """Random Loss Weighting (Lin et al., TMLR 2022): ``softmax(lambda)``, ``lambda ~ N(0, I)`` per call.

    ``generator``: a numpy Generator, an int seed or None, exactly as in the
    PyTorch twin, so both draw the same weights.

    Examples:
        >>> import tensorflow as tf
        >>> weighting = RLW(generator=0)
        >>> losses = {'a': tf.constant(1.0), 'b': tf.constant(3.0)}
        >>> total = weighting(losses)
        >>> weighting.weights.round(4), round(float(weighting.weights.sum()), 6)
        (array([0.5641, 0.4359]), 1.0)
    """

    def __init__(self, distribution: str = "normal", generator: np.random.Generator | int | None = None,
                 tasks: Tasks = None) -> None:
        super().__init__(tasks)
        self._start_rlw(distribution, generator)

    def __call__(self, losses: Losses) -> tf.Tensor:
        stacked = self.stack(losses)
        return self._weighted_sum(stacked, self._draw(int(stacked.shape[0])))

    def _step_weights(self) -> np.ndarray:
        return self._draw(self.num_tasks)


class GradNorm(Weighting):
    """GradNorm (Chen, Badrinarayanan, Lee, Rabinovich, ICML 2018), twin of the PyTorch class.

    ``L_i(0)`` is the loss at the first call (LibMTL's: the first epoch's average).

    Record the forward pass on a *persistent* tape, then::

        with tf.GradientTape(persistent=True) as tape:
            ...
            total = gradnorm(losses)                        # sum_i w_i(k) L_i
        gradnorm.update(losses, shared_variables, tape)     # w(k) -> w(k+1)
        grads = tape.gradient(total, variables)

    The update is the PyTorch twin's: an Adam step (:class:`~mtl_course.core.weighting.Adam`)
    of size ``lr`` on ``dL_grad/dw``, then renormalisation to sum T (T tasks).

    Examples:
        >>> import tensorflow as tf
        >>> W = tf.Variable([1.0, 1.0])
        >>> with tf.GradientTape(persistent=True) as tape:
        ...     losses = {'a': tf.reduce_sum(W), 'b': 3 * tf.reduce_sum(W)}  # b's gradient is 3 times larger
        >>> gradnorm = GradNorm(alpha=1.5, lr=0.025)
        >>> total = gradnorm(losses)  # w = (1, 1) at first
        >>> gradnorm.update(losses, [W], tape).round(4)  # a's weight grows, b's shrinks; the sum stays 2
        array([1.025, 0.975])
    """

    def __init__(self, alpha: float = 1.5, lr: float = 0.025, tasks: Tasks = None) -> None:
        if not alpha >= 0:
            raise ValueError(f"GradNorm alpha must be >= 0, got {alpha}")
        if not lr > 0:
            raise ValueError(f"GradNorm lr must be positive, got {lr}")
        super().__init__(tasks)
        self.alpha, self.lr = float(alpha), float(lr)
        self._initial_losses: np.ndarray | None = None
        self._adam = core.Adam()

    def __call__(self, losses: Losses) -> tf.Tensor:
        stacked = self.stack(losses)
        if self._initial_losses is None:
            self._initial_losses = self._values
        return self._weighted_sum(stacked, self.weights)

    def update(self, losses: Losses, shared_variables: Iterable[tf.Variable], tape: tf.GradientTape) -> np.ndarray:
        """One GradNorm step on the weights (``tape`` recorded the losses); returns the new weights."""
        variables = list(shared_variables)
        if not variables:
            raise ValueError("GradNorm needs the shared layer's variables (got none)")
        ordered = self._order.arrange(losses)
        self.stack(ordered)
        if self._initial_losses is None:
            raise ValueError("call the GradNorm weighting on the losses before update()")
        norms = np.array([_grad_norm(tape, loss, variables) for loss in ordered])
        self._weights = core.gradnorm_update(self.weights, norms, self._values, self._initial_losses,
                                             self.alpha, self.lr, optimizer=self._adam)
        return self.weights

    # fit's compiled step (mtl_course.tf.train) runs the update in the graph: the state goes in and
    # comes out as float64 tensors (_graph_state, _graph_update, _keep_graph_state), so that
    # .weights, save and load keep working on this object.
    def _graph_state(self, do_update: bool) -> tuple[np.ndarray, ...]:
        """``(L(0) is set, L(0), Adam m, v, t, do_update)`` for :meth:`_graph_update`."""
        k, adam, init = self.num_tasks, self._adam, self._initial_losses
        fresh = adam.m is None or adam.m.shape != (k,)
        return (np.bool_(init is not None), np.zeros(k) if init is None else init,
                np.zeros(k) if fresh else adam.m, np.zeros(k) if fresh else adam.v,
                np.float64(0 if fresh else adam.t), np.bool_(do_update))

    def _graph_update(self, stacked: tf.Tensor, norms: tf.Tensor, weights: tf.Tensor,
                      state: tuple[tf.Tensor, ...]) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        """In the graph: ``((w(k+1), L(0), m, v, t), ok)`` from the float64 losses ``stacked``, the
        norms ``n_i`` and ``w(k)``; :func:`~mtl_course.core.weighting.gradnorm_update` in TensorFlow ops.

        ``L(0)`` is the first call's losses; ``ok`` is False where the update would raise
        (a negative loss or initial loss), and then nothing changes (the host raises)."""
        given, init, m, v, t, do_update = state
        init = tf.where(given, init, stacked)
        ok = tf.logical_or(tf.logical_not(do_update),
                           tf.reduce_all(stacked >= 0) & tf.reduce_all(init > 0))

        def step():
            ratio = stacked / init
            mean_ratio = tf.reduce_mean(ratio)
            # all current losses zero: every task trains at the same rate, r_i = 1
            positive = mean_ratio > 0
            rate = tf.where(positive, ratio / tf.where(positive, mean_ratio, tf.ones_like(mean_ratio)),
                            tf.ones_like(ratio))
            g = weights * norms
            grad = tf.sign(g - tf.reduce_mean(g) * rate ** self.alpha) * norms
            (b1, b2), t1 = self._adam.betas, t + 1
            m1, v1 = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad * grad
            m_hat, v_hat = m1 / (1 - tf.pow(tf.constant(b1, tf.float64), t1)), v1 / (1 - tf.pow(tf.constant(b2, tf.float64), t1))
            new = weights - self.lr * m_hat / (tf.sqrt(v_hat) + self._adam.eps)
            new = tf.maximum(new, 1e-6 * tf.reduce_mean(weights))
            return float(self.num_tasks) * new / tf.reduce_sum(new), m1, v1, t1

        w, m, v, t = tf.cond(do_update & ok, step, lambda: (weights, m, v, t))
        return (w, init, m, v, t), ok

    def _keep_graph_state(self, values: np.ndarray, state: Sequence[np.ndarray], do_update: bool) -> None:
        """Keep a compiled step's new state, or raise the eager update's error for its losses."""
        weights, init, m, v, t = (np.asarray(a) for a in state)
        if do_update and (np.any(values < 0) or np.any(init <= 0)):
            core.gradnorm_gradient(self.weights, np.zeros_like(values), values, init, self.alpha)  # raises
        self._initial_losses, self._weights = init.astype(np.float64), weights.astype(np.float64)
        if int(t) > 0:
            self._adam.m, self._adam.v, self._adam.t = m.copy(), v.copy(), int(t)

    def _core_state(self) -> dict[str, Any]:
        k = self.num_tasks or 0
        init = self._initial_losses
        return {"task_weights": self.weights if k else np.zeros(0),
                "initial_losses": np.full(k, np.nan) if init is None else init,
                **self._adam.state(k)}

    def _load_core_state(self, state: Mapping[str, Any]) -> None:
        w = np.asarray(state["task_weights"], dtype=np.float64)
        self._weights = w if w.size else None
        init = np.asarray(state["initial_losses"], dtype=np.float64)
        self._initial_losses = None if init.size == 0 or np.isnan(init).all() else init
        self._adam.load_state(state)


def _grad_norm(tape: tf.GradientTape, loss: tf.Tensor, variables: list[tf.Variable]) -> float:
    grads = tape.gradient(loss, variables)
    squares = [np.sum(np.square(tf.convert_to_tensor(g).numpy().astype(np.float64))) for g in grads if g is not None]
    return float(np.sqrt(sum(squares)))


WEIGHTINGS: dict[str, type[Weighting]] = {
    "equal": EqualWeighting,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNorm,
    "dwa": DWA,
    "rlw": RLW,
}
"""Weightings ``fit`` can build by name (static weights need their values, so pass an object).

Examples:
    >>> sorted(WEIGHTINGS)
    ['dwa', 'equal', 'gradnorm', 'rlw', 'uncertainty']
    >>> WEIGHTINGS["dwa"](temperature=2.0).temperature
    2.0
"""
