r"""Chapter 9's benchmark: every weighting and aggregator of the package, paired seeds, one table.

The protocol (the course's, ``DESIGN.md`` section 6), kept small enough for a 2-core CPU:

1. A :class:`Problem` fixes the data (train / val / test), the tasks, a small
   hard-sharing MLP (shared trunk, one linear head per task), the training
   budget (at most ``epochs`` epochs, early stopping after ``patience``
   epochs without improvement of the summed validation loss, the best
   epoch's weights kept) and the batch size.
2. **Single-task baselines**: one network of the same architecture per task,
   trained alone, for each seed and each learning rate of a grid; each task
   keeps the learning rate with the best mean *validation* metric.
3. **Every multi-task method**, equal weighting included, is trained for
   each seed and each learning rate of the *same* grid and keeps the learning
   rate with the best mean validation :math:`\Delta_m` against the
   single-task baselines (the same tuning budget for every method). With
   ``tune_seeds=k`` the choices use the first ``k`` seeds and the other seeds
   are trained at the kept learning rates only. With a ``ladder`` of rates the
   grid brackets every choice: a best rate at the grid's edge is compared with
   the next rate beyond it, and moves there only when that rate is better
   beyond noise on validation (the same rule for every method and baseline).
4. Scores are test metrics at each method's kept learning rate;
   :math:`\Delta_m` (:func:`mtl_course.metrics.delta_m`) is computed per seed
   against the single-task baselines' mean test scores, then summarised as
   mean and standard deviation over seeds, and compared with equal weighting
   seed by seed (:func:`mtl_course.stats.paired_verdict`).

Choices are robust to the last bits of a run: mean validation scores that
differ by less than :data:`TIE` count as tied, and the first learning rate of
the grid among the tied ones is kept. With ``Problem.float64`` (the default)
PyTorch trains in double precision from weights drawn by numpy, so that
another machine's CPU kernels change the results far below the printed digits.

Every function takes the framework module as its first argument (``mtl`` =
:mod:`mtl_course.torch` or :mod:`mtl_course.tf`), so the same benchmark runs
in both frameworks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

import numpy as np

from mtl_course.core.methods import AGGREGATOR_NAMES, WEIGHTING_NAMES
from mtl_course.core.tasks import Task
from mtl_course.data.digits import multi_digits
from mtl_course.data.synthetic import mmoe_synthetic
from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.metrics import delta_m
from mtl_course.stats import Verdict, format_spread, paired_verdict

__all__ = [
    "AGGREGATOR_METHODS",
    "ALL_METHODS",
    "BASELINE",
    "SINGLE_TASK",
    "TIE",
    "WEIGHTING_METHODS",
    "BenchmarkResult",
    "Problem",
    "Run",
    "build_model",
    "choose",
    "digits_problem",
    "format_table",
    "paired_difference",
    "plot_delta_m",
    "regression_problem",
    "run_benchmark",
    "train_once",
]

WEIGHTING_METHODS = WEIGHTING_NAMES
"""The loss weightings of chapter 7, by their ``fit`` names."""
AGGREGATOR_METHODS = AGGREGATOR_NAMES
"""The gradient aggregators of chapter 8, by their ``fit`` names."""
ALL_METHODS = WEIGHTING_METHODS + AGGREGATOR_METHODS
BASELINE = "equal"
"""The multi-task baseline every other method is compared with."""
TIE = 1e-6
"""Mean validation scores closer than this (relative to ``1 + |best|``) are tied: the first learning rate
of the grid among them is kept, so that the last bits of a run do not decide."""
SINGLE_TASK = "single-task"
"""The method name of the single-task baselines in a :class:`BenchmarkResult`."""


# --------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A data set with its tasks and the training budget of every run.

    Attributes:
        name: shown in tables and plots.
        splits: train / val / test data, ``x`` of shape ``(n, d)``.
        tasks: task name -> :class:`Task` (loss and metric).
        outputs: task name -> size of the task's linear head.
        hidden: widths of the shared trunk's hidden layers.
        epochs: the most epochs of a training run.
        batch_size: of every training run.
        patience: early stopping: a run stops after ``patience`` epochs without improvement of the
            summed validation loss and keeps its best epoch's weights; None trains all ``epochs``.
        float64: PyTorch runs train in double precision from weights drawn by numpy (TensorFlow
            runs stay float32).
    """

    name: str
    splits: Splits
    tasks: dict[str, Task]
    outputs: dict[str, int]
    hidden: tuple[int, ...]
    epochs: int
    batch_size: int
    patience: int | None = None
    float64: bool = False

    def __post_init__(self) -> None:
        names = tuple(self.tasks)
        if not names:
            raise ValueError("a problem needs at least one task")
        if set(self.outputs) != set(names):
            raise ValueError(f"outputs {sorted(self.outputs)} and tasks {sorted(names)} differ")
        for split in self.splits:
            if split.x.ndim != 2:
                raise ValueError(f"inputs must be flat (n, d), got shape {split.x.shape}")
            missing = [t for t in names if t not in split.y]
            if missing:
                raise ValueError(f"the data has no targets for task(s) {missing}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must hold positive widths, got {self.hidden}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be positive, got {self.epochs}, {self.batch_size}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be positive or None, got {self.patience}")

    @property
    def input_dim(self) -> int:
        return int(self.splits.train.x.shape[1])

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {name: bool(task.higher_is_better) for name, task in self.tasks.items()}


def _flat(split: MultiTaskSplit) -> MultiTaskSplit:
    return MultiTaskSplit(split.x.reshape(len(split), -1), split.y)


def digits_problem(seed: int = 0, n_train: int = 1000, n_val: int = 500, n_test: int = 1000,
                   hidden: Sequence[int] = (64,), epochs: int = 40, batch_size: int = 100,
                   patience: int | None = 3, float64: bool = True) -> Problem:
    """:func:`mtl_course.data.multi_digits` with flattened ``8 x 16`` images: classify the
    left digit, the right digit (10 classes each) and the parity of their sum (2 classes).
    At most ``epochs`` epochs, early stopping after ``patience`` epochs without improvement."""
    splits = multi_digits(seed=seed, n_train=n_train, n_val=n_val, n_test=n_test)
    outputs = {"left": 10, "right": 10, "parity": 2}
    return Problem(
        name="multi_digits",
        splits=Splits(*(_flat(s) for s in splits)),
        tasks={name: Task("cross_entropy") for name in outputs},
        outputs=outputs,
        hidden=tuple(hidden),
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        float64=float64,
    )


def regression_problem(seed: int = 0, n_train: int = 1000, n_val: int = 500, n_test: int = 1000,
                       dim: int = 8, correlation: float = 0.9, hidden: Sequence[int] = (32,),
                       epochs: int = 60, batch_size: int = 100, patience: int | None = 3,
                       float64: bool = True) -> Problem:
    """Two related regression tasks from :func:`mtl_course.data.mmoe_synthetic`
    (Ma et al., KDD 2018), scored by test MSE."""
    data = mmoe_synthetic(n=n_train + n_val + n_test, dim=dim, correlation=correlation, seed=seed)
    bounds = np.cumsum([0, n_train, n_val, n_test])
    splits = Splits(*(data.subset(slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])))
    outputs = {"task1": 1, "task2": 1}
    return Problem(
        name="regression",
        splits=splits,
        tasks={name: Task("mse") for name in outputs},
        outputs=outputs,
        hidden=tuple(hidden),
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        float64=float64,
    )


def build_model(mtl: ModuleType, problem: Problem, tasks: Sequence[str] | None = None) -> Any:
    """A hard-sharing MLP in framework ``mtl``: trunk ``(d, *hidden)`` with ReLU, one linear head
    per task in ``tasks`` (default: all of the problem's tasks). Seed first for a reproducible init."""
    names = list(problem.tasks) if tasks is None else list(tasks)
    unknown = [t for t in names if t not in problem.tasks]
    if not names or unknown:
        raise ValueError(f"tasks must be a non-empty subset of {list(problem.tasks)}, got {names}")
    width = problem.hidden[-1]
    trunk = mtl.mlp((problem.input_dim, *problem.hidden), output_activation=True)
    return mtl.HardSharing(trunk, {t: mtl.mlp((width, problem.outputs[t])) for t in names})


# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One training run: a method (or :data:`SINGLE_TASK`) at one learning rate and seed.

    ``val`` and ``test`` map each trained task to its metric; ``seconds`` is the
    wall time of training (the only field that is not reproducible); ``epochs`` the
    epochs trained and ``best_epoch`` the kept one (0-based; with early stopping the
    run stopped before its budget when ``epochs`` is below ``Problem.epochs``).
    """

    method: str
    lr: float
    seed: int
    val: dict[str, float]
    test: dict[str, float]
    seconds: float
    epochs: int = 0
    best_epoch: int | None = None



def train_once(mtl: ModuleType, problem: Problem, method: str, seed: int, lr: float,
               tasks: Sequence[str] | None = None) -> Run:
    """Seed, build, train with ``mtl.fit`` (Adam, early stopping on the validation split when
    ``problem.patience`` is set) and score on val and test.

    ``tasks`` restricts training to some tasks (a single-task baseline is
    ``tasks=[name]`` with ``method="equal"``).
    """
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    names = list(problem.tasks) if tasks is None else list(tasks)
    mtl.seed_everything(seed)
    model = build_model(mtl, problem, names)  # checks the task names
    if problem.float64 and mtl.__name__ == "mtl_course.torch":
        from mtl_course.torch.runtime import float64_numpy_init

        model = float64_numpy_init(model, seed)
    specs = {t: problem.tasks[t] for t in names}
    start = time.perf_counter()
    history = mtl.fit(model, problem.splits.train, specs, method=method, epochs=problem.epochs,
                      batch_size=problem.batch_size, lr=lr, seed=seed, progress=False,
                      val_data=problem.splits.val if problem.patience is not None else None,
                      patience=problem.patience)
    seconds = time.perf_counter() - start
    return Run(method=method, lr=float(lr), seed=int(seed),
               val=mtl.evaluate(model, problem.splits.val, specs),
               test=mtl.evaluate(model, problem.splits.test, specs), seconds=seconds,
               epochs=int(history.epochs), best_epoch=history.best_epoch)


def _mean_scores(runs: Sequence[Run], split: str) -> dict[str, float]:
    tasks = list(getattr(runs[0], split))
    return {t: float(np.mean([getattr(r, split)[t] for r in runs])) for t in tasks}


def choose(scores: Mapping[Any, float], higher: bool = True, tie: float = TIE) -> Any:
    """The key (a learning rate, a method) of the best score; scores within ``tie * (1 + |best|)``
    of the best are tied and the first of them in ``scores``' order is returned, so that the last
    bits of a run cannot change the choice.

    Examples:
        >>> choose({0.01: 1.0, 0.03: 2.0, 0.1: 2.0 + 1e-9})
        0.03
        >>> choose({0.01: 0.5, 0.03: 0.2}, higher=False)
        0.03
    """
    if not scores:
        raise ValueError("nothing to choose from")
    values = np.array(list(scores.values()), dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"scores must be finite, got {scores}")
    best = values.max() if higher else values.min()
    close = np.abs(values - best) <= tie * (1.0 + abs(best))
    return list(scores)[int(np.argmax(close))]


@dataclass
class BenchmarkResult:
    """Every run of :func:`run_benchmark` and the choices it made.

    Attributes:
        problem: the :class:`Problem`.
        runs: all runs, tuning runs included (single-task runs have
            ``method == SINGLE_TASK`` and score only their own task).
        lr: method -> the learning rate it kept (on validation).
        single_task_lr: task -> the learning rate kept for its single-task baseline.
        seeds: the seeds of every method's runs.
        lrs: the learning-rate grid (with a ladder: every rate that some method or baseline was tuned at).
        tried: method -> the learning rates it was tuned at.
        single_task_tried: task -> the learning rates its single-task baseline was tuned at.
        ladder: the rates a bracketing grid could extend to (empty for a fixed grid).
        steps: method -> the paired verdicts (validation, tuning seeds) of each rate tried beyond the edge of its
            grid against the best rate before it, in the order they were tried.
        single_task_steps: task -> the same for its single-task baseline.
    """

    problem: Problem
    runs: list[Run]
    lr: dict[str, float]
    single_task_lr: dict[str, float]
    seeds: tuple[int, ...]
    lrs: tuple[float, ...] = ()
    tried: dict[str, tuple[float, ...]] = field(default_factory=dict)
    single_task_tried: dict[str, tuple[float, ...]] = field(default_factory=dict)
    ladder: tuple[float, ...] = ()
    steps: dict[str, list[Verdict]] = field(default_factory=dict)
    single_task_steps: dict[str, list[Verdict]] = field(default_factory=dict)

    @property
    def bracketed(self) -> dict[str, bool]:
        """Method -> whether its kept learning rate is interior to the rates it was tuned at: a smaller and a
        larger rate were tried and scored worse on validation."""
        return {m: min(self.tried[m]) < lr < max(self.tried[m]) for m, lr in self.lr.items()}

    @property
    def single_task_bracketed(self) -> dict[str, bool]:
        """Task -> whether its single-task baseline's kept learning rate is interior to the rates it was tuned at."""
        return {t: min(self.single_task_tried[t]) < lr < max(self.single_task_tried[t])
                for t, lr in self.single_task_lr.items()}

    @property
    def baseline_lr(self) -> float:
        """The learning rate kept by equal weighting."""
        return self.lr[BASELINE]

    def at(self, lr: float, seeds: Sequence[int]) -> BenchmarkResult:
        """The runs of every method and single-task baseline at learning rate ``lr`` and ``seeds``, as a result of
        their own (every one "kept" ``lr``), for example to compare with a run of another framework at one rate.

        Raises:
            KeyError: some method or task has no run at ``lr`` for every seed.
        """
        seeds = tuple(int(s) for s in seeds)
        runs = [r for r in self.runs if r.lr == lr and r.seed in seeds]
        names = [*self.methods, *((SINGLE_TASK, t) for t in self.problem.tasks)]
        for name in names:
            method, task = (name, None) if isinstance(name, str) else name
            have = {r.seed for r in runs if r.method == method and (task is None or task in r.test)}
            if have != set(seeds):
                raise KeyError(f"{name} has no run at lr={lr} for seed(s) {sorted(set(seeds) - have)}")
        return BenchmarkResult(problem=self.problem, runs=runs, lr=dict.fromkeys(self.methods, float(lr)),
                               single_task_lr=dict.fromkeys(self.problem.tasks, float(lr)), seeds=seeds,
                               lrs=(float(lr),))

    def single_task_scores(self, split: str = "test") -> dict[str, float]:
        """Task -> the mean (over seeds) score of its tuned single-task baseline."""
        return {t: _mean_scores([r for r in self.runs if r.method == SINGLE_TASK and r.lr == lr
                                 and t in r.test], split)[t]
                for t, lr in self.single_task_lr.items()}

    def method_runs(self, method: str, lr: float | None = None) -> list[Run]:
        """The runs of a multi-task method at ``lr`` (default: the one it kept), in seed order."""
        lr = self.lr[method] if lr is None else lr
        runs = sorted((r for r in self.runs if r.method == method and r.lr == lr), key=lambda r: r.seed)
        if not runs:
            raise KeyError(f"no runs of {method!r} at lr={lr}")
        return runs

    def delta_m(self, method: str, lr: float | None = None, split: str = "test") -> np.ndarray:
        """:math:`\\Delta_m` (percent, higher is better) of each seed's run (at ``lr``, default the
        method's kept one) against the single-task baselines' mean score on ``split``."""
        base = self.single_task_scores(split)
        return np.array([delta_m(getattr(r, split), base, self.problem.higher_is_better)
                         for r in self.method_runs(method, lr)])

    @property
    def methods(self) -> list[str]:
        """The multi-task methods, in :data:`ALL_METHODS` order."""
        return [m for m in ALL_METHODS if m in self.lr] + sorted(set(self.lr) - set(ALL_METHODS))

    def verdict(self, method: str, other: str = BASELINE) -> Verdict:
        """The paired verdict (:func:`mtl_course.stats.paired_verdict`) of ``method``'s test
        :math:`\\Delta_m` against ``other``'s, each at its kept learning rate."""
        return paired_verdict(self.delta_m(method), self.delta_m(other), names=(method, other),
                              lower_is_better=False, digits=2)

    def summary(self) -> list[dict[str, Any]]:
        """One row per method (single-task first): the kept learning rate, mean and std over seeds of
        each task's test metric and of :math:`\\Delta_m`, and the paired difference to equal weighting
        (:func:`paired_difference`; None for equal weighting itself and with a single seed)."""
        rows = []
        st_runs = {t: [r for r in self.runs if r.method == SINGLE_TASK and r.lr == lr and t in r.test]
                   for t, lr in self.single_task_lr.items()}
        row: dict[str, Any] = {"method": SINGLE_TASK, "lr": None}
        for t, runs in st_runs.items():
            values = np.array([r.test[t] for r in runs])
            row[t] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
        row["delta_m"] = (0.0, 0.0)
        row["vs_equal"] = None
        rows.append(row)
        # a paired interval needs two seeds or more
        baseline = self.delta_m(BASELINE) if BASELINE in self.methods and len(self.seeds) > 1 else None
        for method in self.methods:
            runs = self.method_runs(method)
            row = {"method": method, "lr": self.lr[method]}
            for t in self.problem.tasks:
                values = np.array([r.test[t] for r in runs])
                row[t] = (float(values.mean()), _std(values))
            dm = self.delta_m(method)
            row["delta_m"] = (float(dm.mean()), _std(dm))
            row["vs_equal"] = (None if baseline is None or method == BASELINE
                               else paired_difference(dm, baseline))
            rows.append(row)
        return rows


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    r"""Seed-by-seed comparison of two methods' scores ``a`` and ``b`` (same seeds, same order).

    With :math:`d_s = a_s - b_s` over :math:`n` seeds, the mean difference
    :math:`\bar d`, its standard error :math:`s_d/\sqrt n` and Student's
    :math:`t` interval :math:`\bar d \pm t_{n-1,(1+c)/2}\, s_d/\sqrt n`. The
    difference is ``"within noise"`` when the interval contains 0. Pairing by
    seed removes the variation that both methods share (same initialisation
    and batch order), which is why it is sharper than comparing two
    mean-and-std pairs. The numbers come from :func:`mtl_course.stats.paired_verdict`.

    Returns:
        ``{"mean", "half_width", "low", "high", "within_noise"}``.

    Raises:
        ValueError: fewer than two seeds, different lengths, non-finite values.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D with the same length, got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError("a paired interval needs at least two seeds")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("scores must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    verdict = paired_verdict(a, b, confidence=confidence)
    return {"mean": verdict.mean_difference, "half_width": (verdict.high - verdict.low) / 2,
            "low": verdict.low, "high": verdict.high, "within_noise": not verdict.established}


_WORKER: dict[str, Any] = {}


def _init_worker(module: str, problem: Problem) -> None:
    import importlib

    _WORKER["mtl"] = importlib.import_module(module)
    _WORKER["problem"] = problem
    if module == "mtl_course.torch":
        import torch

        torch.set_num_threads(1)  # one process per core: threads inside would compete


def _run_job(job: tuple[str, int, float, tuple[str, ...] | None]) -> Run:
    method, seed, lr, tasks = job
    return train_once(_WORKER["mtl"], _WORKER["problem"], method, seed, lr, tasks)


class _Trainer:
    """``train_once`` for lists of jobs, in ``workers`` processes (PyTorch on the CPU only) kept for all the lists
    of a benchmark, results in job order.

    Every run seeds itself, so the results do not depend on the number of workers. The processes
    are spawned, not forked (a fork of a process that has started PyTorch's or TensorFlow's
    threads can deadlock), and inherit the environment (``ATEN_CPU_CAPABILITY``, BLAS settings).
    """

    def __init__(self, mtl: ModuleType, problem: Problem, workers: int, bar: Any) -> None:
        self.mtl, self.problem, self.bar = mtl, problem, bar
        self.serial = workers <= 1 or mtl.__name__ != "mtl_course.torch" or mtl.device().type != "cpu"
        self.workers, self.pool = workers, None

    def __enter__(self) -> _Trainer:
        if not self.serial:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(self.mtl.__name__, self.problem))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def __call__(self, jobs: list[tuple[str, int, float, tuple[str, ...] | None]]) -> list[Run]:
        if self.pool is None:
            out = []
            for job in jobs:
                out.append(train_once(self.mtl, self.problem, *job))
                self.bar.update()
            return out
        # the smallest learning rates train longest: start them first, so that no process is left alone at the end
        first = sorted(range(len(jobs)), key=lambda i: jobs[i][2])
        out_of_order = []
        for run in self.pool.map(_run_job, [jobs[i] for i in first]):
            out_of_order.append(run)
            self.bar.update()
        runs = [None] * len(jobs)
        for i, run in zip(first, out_of_order):
            runs[i] = run
        return runs


def _check_grid(lrs: Sequence[float], ladder: Sequence[float] | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    lrs = tuple(float(lr) for lr in lrs)
    if not lrs or len(set(lrs)) != len(lrs):
        raise ValueError(f"lrs must be distinct and non-empty, got {lrs}")
    if ladder is None:
        return lrs, lrs
    ladder = tuple(float(lr) for lr in ladder)
    if list(ladder) != sorted(set(ladder)):
        raise ValueError(f"ladder must be increasing, got {ladder}")
    if not set(lrs) <= set(ladder):
        raise ValueError(f"lrs {lrs} must be rates of the ladder {ladder}")
    where = sorted(ladder.index(lr) for lr in lrs)
    if where != list(range(where[0], where[0] + len(where))):
        raise ValueError(f"lrs {lrs} must be neighbours on the ladder {ladder}")
    return tuple(ladder[i] for i in where), ladder


def _next_rate(tried: Sequence[float], best: float, ladder: Sequence[float]) -> float | None:
    """The ladder's next rate beyond the edge of ``tried`` where ``best`` lies; None when ``best`` is interior
    (bracketed) or the ladder ends there."""
    low, high = ladder.index(min(tried)), ladder.index(max(tried))
    if best == ladder[low] and low > 0:
        return ladder[low - 1]
    if best == ladder[high] and high < len(ladder) - 1:
        return ladder[high + 1]
    return None


def run_benchmark(mtl: ModuleType, problem: Problem, methods: Sequence[str] = ALL_METHODS,
                  seeds: Sequence[int] = (0, 1, 2, 3, 4), lrs: Sequence[float] = (1e-2, 3e-2, 1e-1),
                  progress: bool = False, workers: int = 1, tune_seeds: int | None = None,
                  full_grid: Sequence[str] = (BASELINE,), ladder: Sequence[float] | None = None) -> BenchmarkResult:
    """Run the protocol of this module's docstring and return every run.

    Args:
        mtl: :mod:`mtl_course.torch` or :mod:`mtl_course.tf`.
        problem: the data, tasks, model size and training budget.
        methods: ``fit`` method names; equal weighting is always run (it is
            the baseline of the paired comparisons).
        seeds: one run per seed, method and learning rate (model initialisation and batch order).
        lrs: the learning-rate grid of every method and of the single-task baselines (with ``ladder``:
            the grid every one of them starts from).
        progress: a ``tqdm.tqdm`` bar over the runs.
        workers: train in this many processes (PyTorch on the CPU; elsewhere one). The results are
            the same for any number: each run seeds itself.
        tune_seeds: choose every learning rate on the first ``tune_seeds`` seeds (default: all), then
            train the other seeds at the kept rates only: the same tuning budget for every method, at a
            fraction of the cost.
        full_grid: methods that are trained with every seed at every learning rate they were tuned on all
            the same (to compare learning rates over all seeds; equal weighting by default).
        ladder: an increasing sequence of learning rates that holds ``lrs`` as neighbours. With it, every
            choice is *bracketed*: when the best rate of a method (or of a single-task baseline) on ``lrs``
            is at an edge, it is also tuned at the ladder's next rate beyond that edge, and moves there
            only when that rate is better beyond noise (the paired verdict of the tuning seeds' validation
            scores, :func:`mtl_course.stats.paired_verdict`), in which case the next rate beyond is tried
            in turn. So the kept rate ends interior to the rates tried, with a rate on either side that
            scored worse or no better beyond noise, unless the ladder ends
            (:attr:`BenchmarkResult.bracketed` says which). The same rule for every method;
            :attr:`BenchmarkResult.tried` records the rates each one used and
            :attr:`BenchmarkResult.steps` the verdicts. The single-task baselines go first (their
            validation scores are the reference of every method's :math:`\\Delta_m`). Needs two tuning
            seeds or more.
    """
    seeds = tuple(int(s) for s in seeds)
    bracket = ladder is not None
    start, ladder = _check_grid(lrs, ladder)
    methods = list(dict.fromkeys([BASELINE, *methods]))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    n_tune = len(seeds) if tune_seeds is None else int(tune_seeds)
    if not 1 <= n_tune <= len(seeds):
        raise ValueError(f"tune_seeds must be between 1 and the number of seeds {len(seeds)}, got {tune_seeds}")
    if bracket and n_tune < 2:
        raise ValueError("a ladder needs at least 2 tuning seeds (a rate beyond the grid's edge is kept only when "
                         "it is better beyond noise, a paired comparison over the tuning seeds)")
    tuning, rest = seeds[:n_tune], seeds[n_tune:]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; use names from {ALL_METHODS}")
    import tqdm

    names = list(problem.tasks)
    higher = problem.higher_is_better
    bar = tqdm.tqdm(desc=problem.name, unit="run", disable=not progress or None)
    runs: list[Run] = []
    with _Trainer(mtl, problem, workers, bar) as trainer:
        def train(jobs: list[tuple[str, int, float, tuple[str, ...] | None]]) -> None:
            bar.total = (bar.total or 0) + len(jobs)
            out = trainer(jobs)
            runs.extend(replace(run, method=SINGLE_TASK) if tasks is not None else run
                        for run, (*_, tasks) in zip(out, jobs))

        def val_runs(method: str, lr: float, task: str | None = None) -> list[Run]:
            return sorted((r for r in runs if r.method == method and r.lr == lr and r.seed in tuning
                           and (task is None or task in r.val)), key=lambda r: r.seed)

        def mean_val(method: str, lr: float, task: str | None = None) -> Any:
            picked = val_runs(method, lr, task)
            return _mean_scores(picked, "val") if task is None else float(np.mean([r.val[task] for r in picked]))

        def bracket_all(keys: Sequence[Any], first: Mapping[Any, float], scores: Any, better: Mapping[Any, bool],
                        job: Any) -> tuple[dict[Any, float], dict[Any, list[Verdict]]]:
            """Move each key's best rate beyond the edge of its rates while the next rate is better beyond noise."""
            best, steps = dict(first), {k: [] for k in keys}
            pending = {k: _next_rate(tried[k], best[k], ladder) for k in keys} if bracket else {}
            while pending := {k: lr for k, lr in pending.items() if lr is not None}:
                for k, lr in pending.items():
                    tried[k].append(lr)
                train([j for k, lr in pending.items() for j in job(k, lr)])
                for k, lr in pending.items():
                    verdict = paired_verdict(scores(k, lr), scores(k, best[k]), names=(f"lr {lr:g}", f"lr {best[k]:g}"),
                                             lower_is_better=not better[k], digits=2)
                    steps[k].append(verdict)
                    moved = verdict.winner == f"lr {lr:g}"
                    best[k] = lr if moved else best[k]
                    pending[k] = _next_rate(tried[k], lr, ladder) if moved else None
            return best, steps

        # the tuning runs: every single-task baseline and every method at every starting rate
        tried: dict[Any, list[float]] = {**{(SINGLE_TASK, t): list(start) for t in names},
                                         **{m: list(start) for m in methods}}
        train([(BASELINE, s, lr, (t,)) for t in names for lr in start for s in tuning]
              + [(method, s, lr, None) for method in methods for lr in start for s in tuning])

        # 1. single-task baselines, each task's learning rate chosen on validation
        st_keys = [(SINGLE_TASK, t) for t in names]
        single_lr, st_steps = bracket_all(
            st_keys, {(SINGLE_TASK, t): choose({lr: mean_val(SINGLE_TASK, lr, t) for lr in start}, higher[t])
                      for t in names},
            lambda k, lr: np.array([r.val[k[1]] for r in val_runs(SINGLE_TASK, lr, k[1])]),
            {k: higher[k[1]] for k in st_keys}, lambda k, lr: [(BASELINE, s, lr, (k[1],)) for s in tuning])
        single_lr = {t: single_lr[(SINGLE_TASK, t)] for t in names}
        st_val = {t: mean_val(SINGLE_TASK, single_lr[t], t) for t in names}

        # 2. every method on the same grid, its learning rate chosen by validation delta_m
        kept, steps = bracket_all(
            methods, {m: choose({lr: delta_m(mean_val(m, lr), st_val, higher) for lr in start}) for m in methods},
            lambda m, lr: np.array([delta_m(r.val, st_val, higher) for r in val_runs(m, lr)]),
            dict.fromkeys(methods, True), lambda m, lr: [(m, s, lr, None) for s in tuning])

        # 3. the other seeds at the kept learning rates (and at every rate tried for the methods of full_grid)
        if rest:
            full = set(full_grid)
            train([(BASELINE, s, single_lr[t], (t,)) for t in names for s in rest]
                  + [(method, s, lr, None) for method in methods for lr in sorted(tried[method]) for s in rest
                     if lr == kept[method] or method in full])
    bar.close()
    return BenchmarkResult(problem=problem, runs=runs, lr=kept, single_task_lr=single_lr, seeds=seeds,
                           lrs=tuple(sorted({lr for rates in tried.values() for lr in rates})) if bracket else start,
                           tried={m: tuple(sorted(tried[m])) for m in methods},
                           single_task_tried={t: tuple(sorted(tried[(SINGLE_TASK, t)])) for t in names},
                           ladder=ladder if bracket else (), steps=steps,
                           single_task_steps={t: st_steps[(SINGLE_TASK, t)] for t in names})


# --------------------------------------------------------------------------
# presentation
# --------------------------------------------------------------------------


def format_table(result: BenchmarkResult, digits: int = 3) -> str:
    """The summary as a fixed-width text table: the kept learning rate, ``mean ± std`` of each task's test metric
    and of :math:`\\Delta_m` (percent), and the paired difference to equal weighting
    (``mean ± t-interval half width``, ``*`` when the interval excludes 0).

    Every number has the digits its spread over seeds justifies (:func:`mtl_course.stats.format_spread`:
    to the leading digit of the std or half-width, one fewer near a rounding boundary), so that another
    machine's float32 rounding does not change a printed digit; ``digits`` decimals where the spread is 0.
    """
    rows = result.summary()
    tasks = list(result.problem.tasks)
    header = ["method", "lr", *tasks, "delta_m %", "vs equal (pp)"]
    lines = []
    for row in rows:
        cells = [row["method"], "" if row["lr"] is None else f"{row['lr']:g}"]
        cells += [format_spread(*row[t], most=digits) for t in tasks]
        cells.append(format_spread(*row["delta_m"], sign=True, most=2))
        vs = row["vs_equal"]
        cells.append("" if vs is None else
                     format_spread(vs["mean"], vs["half_width"], sign=True, most=2) + ("" if vs["within_noise"] else " *"))
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(line.rstrip() for line in out)


def plot_delta_m(result: BenchmarkResult, ax: Any = None) -> Any:
    """Per method at its kept learning rate, each seed's :math:`\\Delta_m` (dots) and their mean ± std (bar);
    0 is the single-task baseline, the band equal weighting's mean ± std."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    methods = result.methods
    y = np.arange(len(methods))[::-1]
    for yi, method in zip(y, methods):
        dm = result.delta_m(method)
        color = "C3" if method == BASELINE else ("C0" if method in WEIGHTING_METHODS else "C2")
        ax.errorbar(dm.mean(), yi, xerr=_std(dm), fmt="o", color=color, capsize=3)
        ax.scatter(dm, np.full(len(dm), yi) - 0.2, s=10, color=color, alpha=0.5)
    if BASELINE in methods:
        base = result.delta_m(BASELINE)
        ax.axvspan(base.mean() - _std(base), base.mean() + _std(base), color="C3", alpha=0.12)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(y, methods)
    ax.set_xlabel(r"$\Delta_m$ vs single-task (%)")
    ax.set_title(f"{result.problem.name} (each method at its tuned lr, {len(result.seeds)} seeds)")
    return ax
