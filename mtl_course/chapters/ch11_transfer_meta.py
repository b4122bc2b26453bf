r"""Multi-task learning, transfer and meta-learning on the same task family (chapter 11).

One data set, a :class:`~mtl_course.data.families.SineFamily` split of
``n_train_tasks`` training tasks with ``n_per_task`` shared inputs each, is
used in three ways to prepare a network for a *new* task of the family, which
is then learned from ``K`` examples (its "shots"). :func:`prepare_networks`
returns four networks ``1 -> hidden -> hidden -> 1`` (ReLU), one per entry of
:data:`APPROACHES`:

* ``"random"``: the baseline, a random initialisation;
* ``"pooled"``: pretrained with :func:`mtl_course.torch.train.fit` on the
  pooled examples of all training tasks (transfer by pretraining);
* ``"multi-task"``: a hard-sharing network (one linear head per training
  task) trained jointly with :func:`~mtl_course.torch.train.fit`; its output
  layer is the mean of the task heads;
* ``"reptile"``: meta-learned with :func:`mtl_course.torch.meta.reptile` on the
  same training tasks (each inner loop sees ``inner_shots`` of a training
  task's examples).

Every network is then adapted to the new task in both ways of
:data:`ADAPTATIONS`, so that the comparison of the networks does not mix in a
comparison of adaptations:

* ``"ridge head"``: :class:`LinearHeadLearner`, a new linear head fitted in
  closed form by ridge regression on the frozen hidden representation
  (the network without its output layer);
* ``"fine-tune"``: :class:`FineTuneLearner`, ``adapt_steps`` full-batch SGD
  steps of size ``adapt_lr`` on every weight, from the network itself
  (:func:`mtl_course.torch.meta.adapt`).

The networks are float64 (tiny models: the printed errors then do not depend
on the CPU's float32 kernels). The score is the mean squared error of the
adapted model on a 100-point grid of the new task, averaged over
``n_test_tasks`` new tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtl_course.checks import check_count, check_rate
from mtl_course.data.families import SineFamily
from mtl_course.data.types import MultiTaskSplit
from mtl_course.torch.meta import adapt, reptile
from mtl_course.torch.models import HardSharing, mlp
from mtl_course.torch.runtime import seed_everything
from mtl_course.torch.train import fit

__all__ = ["ADAPTATIONS", "APPROACHES", "FineTuneLearner", "LinearHeadLearner", "compare_few_shot",
           "few_shot_errors", "learners", "mean_linear", "prepare_networks", "train_learners"]

#: The networks of :func:`prepare_networks`, in the order of the chapter's table.
APPROACHES = ("random", "pooled", "multi-task", "reptile")

#: The two ways every network is adapted to a new task (see the module docstring).
ADAPTATIONS = ("ridge head", "fine-tune")


def _tensor(x: np.ndarray, model: nn.Module) -> torch.Tensor:
    """``x`` as a tensor in the dtype and on the device of ``model``'s parameters."""
    param = next(model.parameters())
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=param.device).to(param.dtype)


@dataclass
class FineTuneLearner:
    """Learns a new task by fine-tuning every weight of ``init`` with :func:`~mtl_course.torch.meta.adapt`."""

    init: nn.Module
    steps: int = 32
    lr: float = 0.02

    def predict(self, x: np.ndarray, y: np.ndarray, x_query: np.ndarray) -> np.ndarray:
        """The prediction at ``x_query`` after fine-tuning on the examples ``(x, y)``."""
        model = adapt(self.init, x, y, self.steps, self.lr)
        with torch.no_grad():
            return model(_tensor(x_query, model)).cpu().numpy()


@dataclass
class LinearHeadLearner:
    r"""Learns a new task as a ridge-regression head on a frozen shared representation ``trunk``.

    With features :math:`F = [h(x), 1]`, the head is
    :math:`w = (F^\top F + \lambda D)^{-1} F^\top y`, where :math:`D` is the
    identity with a 0 for the bias (the bias is not shrunk).
    """

    trunk: nn.Module
    ridge: float = 1e-2

    def features(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            h = self.trunk(_tensor(x, self.trunk)).cpu().numpy().astype(np.float64)
        return np.hstack([h, np.ones((len(h), 1))])

    def predict(self, x: np.ndarray, y: np.ndarray, x_query: np.ndarray) -> np.ndarray:
        """The prediction at ``x_query`` of the ridge head fitted on the examples ``(x, y)``."""
        F = self.features(x)
        penalty = self.ridge * np.eye(F.shape[1])
        penalty[-1, -1] = 0.0
        w = np.linalg.solve(F.T @ F + penalty, F.T @ np.asarray(y, dtype=np.float64))
        return self.features(x_query) @ w


def _net(hidden: int) -> nn.Sequential:
    return mlp([1, hidden, hidden, 1]).double()


def mean_linear(layers: Sequence[nn.Linear]) -> nn.Linear:
    """A new linear layer whose weight and bias are the means of ``layers``' (all of one shape)."""
    if not layers:
        raise ValueError("layers is empty")
    first = layers[0]
    out = nn.Linear(first.in_features, first.out_features, bias=first.bias is not None).to(first.weight.dtype)
    with torch.no_grad():
        out.weight.copy_(torch.stack([layer.weight for layer in layers]).mean(0))
        if first.bias is not None:
            out.bias.copy_(torch.stack([layer.bias for layer in layers]).mean(0))
    return out


def prepare_networks(train: MultiTaskSplit, seed: int = 0, hidden: int = 40, epochs: int = 300,
                     lr: float = 3e-3, meta_steps: int = 1000, inner_shots: int = 10, inner_steps: int = 5,
                     inner_lr: float = 0.02, outer_lr: float = 0.5) -> dict[str, nn.Sequential]:
    """The four float64 networks of :data:`APPROACHES`, each prepared on ``train`` (see the module docstring).

    ``epochs`` full-batch Adam epochs (rate ``lr``) train the multi-task and
    the pooled network; ``meta_steps`` Reptile steps, each on one training
    task drawn at random with ``inner_shots`` of its examples, train the
    meta-learned one. Every network is an MLP ``1-hidden-hidden-1`` with ReLU,
    initialised after ``seed_everything(seed)``; ``net[:-1]`` is its hidden
    representation. The multi-task network's output layer is the mean of its
    ``n_train_tasks`` trained heads.
    """
    n = len(train)
    names = list(train.task_names)
    check_count(inner_shots, "inner_shots")
    if inner_shots > n:
        raise ValueError(f"inner_shots={inner_shots} is more than the {n} examples per training task")
    nets: dict[str, nn.Sequential] = {}

    seed_everything(seed)
    nets["random"] = _net(hidden)

    seed_everything(seed)
    pooled_net = _net(hidden)
    pooled = HardSharing(pooled_net[:-1], {"pooled": pooled_net[-1]})
    x_pooled = np.tile(train.x, (len(names), 1))
    y_pooled = np.concatenate([train.y[t] for t in names])
    fit(pooled, MultiTaskSplit(x_pooled, {"pooled": y_pooled}), {"pooled": "mse"}, epochs=epochs,
        batch_size=len(x_pooled), lr=lr, seed=seed, progress=False)
    nets["pooled"] = pooled_net

    seed_everything(seed)
    trunk = mlp([1, hidden, hidden], output_activation=True).double()
    heads = {t: nn.Linear(hidden, 1).double() for t in names}
    joint = HardSharing(trunk, heads)
    fit(joint, train, {t: "mse" for t in names}, epochs=epochs, batch_size=n, lr=lr, seed=seed,
        progress=False)
    nets["multi-task"] = nn.Sequential(*trunk, mean_linear([heads[t] for t in names]))

    seed_everything(seed)
    meta_net = _net(hidden)

    def sample_task(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        task = names[rng.integers(len(names))]
        index = rng.choice(n, size=inner_shots, replace=False)
        return train.x[index], train.y[task][index]

    reptile(meta_net, sample_task, meta_steps, inner_steps=inner_steps, inner_lr=inner_lr,
            outer_lr=outer_lr, seed=seed, progress=False)
    nets["reptile"] = meta_net
    return nets


def learners(nets: dict[str, nn.Sequential], adapt_steps: int = 32, adapt_lr: float = 0.01,
             ridge: float = 1e-2) -> dict[tuple[str, str], FineTuneLearner | LinearHeadLearner]:
    """Both adaptations of :data:`ADAPTATIONS` for every network: keys ``(approach, adaptation)``."""
    check_count(adapt_steps, "adapt_steps", 0)  # 0: the network's own prediction, as meta.adapt allows
    check_rate(adapt_lr, "adapt_lr")
    out: dict[tuple[str, str], FineTuneLearner | LinearHeadLearner] = {}
    for name, net in nets.items():
        out[name, "ridge head"] = LinearHeadLearner(net[:-1], ridge)
        out[name, "fine-tune"] = FineTuneLearner(net, adapt_steps, adapt_lr)
    return out


def train_learners(train: MultiTaskSplit, seed: int = 0, adapt_steps: int = 32, adapt_lr: float = 0.01,
                   ridge: float = 1e-2, **kwargs) -> dict[tuple[str, str], FineTuneLearner | LinearHeadLearner]:
    """:func:`learners` of :func:`prepare_networks` (``kwargs`` go to the latter)."""
    return learners(prepare_networks(train, seed, **kwargs), adapt_steps, adapt_lr, ridge)


def few_shot_errors(learners: dict, family: SineFamily, shots: Sequence[int], n_test_tasks: int = 10,
                    seed: int = 0) -> dict[str, dict[int, float]]:
    """Each learner's mean test MSE on ``n_test_tasks`` new tasks, for each number of examples in ``shots``.

    Every learner sees the same new tasks and the same examples; the ``K``
    examples are the first ``K`` of ``max(shots)`` draws, so larger ``K``
    adds examples to smaller ones. ``learners`` maps any key to an object
    with ``predict(x, y, x_query)``.
    """
    shots = [check_count(k, "shots") for k in shots]
    if not shots:
        raise ValueError("shots is empty")
    rng = np.random.default_rng([seed, 11])
    tasks = family.sample_tasks(n_test_tasks, rng)
    grid = family.grid(100)
    support = [family.sample(task, max(shots), rng) for task in tasks]
    errors: dict[str, dict[int, float]] = {}
    for name, learner in learners.items():
        errors[name] = {}
        for k in shots:
            mse = [float(np.mean((learner.predict(x[:k], y[:k], grid) - task(grid)) ** 2))
                   for task, (x, y) in zip(tasks, support)]
            errors[name][k] = float(np.mean(mse))
    return errors


def compare_few_shot(seeds: Sequence[int] = (0, 1, 2, 3, 4), shots: Sequence[int] = (2, 5, 10, 20),
                     n_train_tasks: int = 20, n_per_task: int = 50, n_test_tasks: int = 10,
                     family: SineFamily | None = None, **kwargs) -> list[dict]:
    """Rows ``{"seed", "approach", "adaptation", "shots", "mse"}``: :func:`few_shot_errors` of :func:`train_learners`.

    Each seed draws its own training tasks and data (a numpy Generator
    seeded with ``seed``), its own initialisations and its own new tasks.
    ``kwargs`` go to :func:`train_learners`.
    """
    family = family if family is not None else SineFamily()
    check_count(n_train_tasks, "n_train_tasks")
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        train = family.multitask_split(family.sample_tasks(n_train_tasks, rng), n_per_task, rng)
        learners = train_learners(train, seed=seed, **kwargs)
        errors = few_shot_errors(learners, family, shots, n_test_tasks, seed)
        rows += [{"seed": seed, "approach": a, "adaptation": m, "shots": k, "mse": errors[a, m][k]}
                 for a in APPROACHES for m in ADAPTATIONS for k in shots]
    return rows
