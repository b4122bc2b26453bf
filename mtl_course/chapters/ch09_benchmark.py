r"""Chapter 9's benchmark: every weighting and aggregator of the package, several seeds, one table.

The protocol, kept small enough for a 2-core CPU:

1. A :class:`Problem` fixes the data (train / val / test), the tasks, a small
   hard-sharing MLP (shared trunk, one linear head per task), the number of
   epochs and the batch size.
2. **Single-task baselines**: one network of the same architecture per task,
   trained alone, for each seed and each learning rate of a small grid; each
   task keeps the learning rate with the best mean *validation* metric.
3. **Tuned equal weighting**: the multi-task network trained on the plain sum
   of the losses for each seed and learning rate; the learning rate with the
   best mean validation :math:`\Delta_m` is kept.
4. **Every other method** is trained for each seed at that learning rate
   (tuning each method too would multiply the cost by the grid size; this
   choice favours the baseline, and the chapter says so).
5. Scores are test metrics; :math:`\Delta_m` (:func:`mtl_course.metrics.delta_m`)
   is computed per seed against the single-task baselines' mean test scores,
   then summarised as mean and standard deviation over seeds, and compared
   with equal weighting seed by seed (:func:`paired_difference`).

Every function takes the framework module as its first argument (``mtl`` =
:mod:`mtl_course.torch` or :mod:`mtl_course.tf`), so the same benchmark runs
in both frameworks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import numpy as np

from mtl_course.core.methods import AGGREGATOR_NAMES, WEIGHTING_NAMES
from mtl_course.core.tasks import Task
from mtl_course.data.digits import multi_digits
from mtl_course.data.synthetic import mmoe_synthetic
from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.metrics import delta_m
from mtl_course.stats import format_spread, paired_verdict

__all__ = [
    "AGGREGATOR_METHODS",
    "ALL_METHODS",
    "BASELINE",
    "SINGLE_TASK",
    "WEIGHTING_METHODS",
    "BenchmarkResult",
    "Problem",
    "Run",
    "build_model",
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
"""The multi-task baseline whose learning rate is tuned."""
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
        epochs, batch_size: of every training run.
    """

    name: str
    splits: Splits
    tasks: dict[str, Task]
    outputs: dict[str, int]
    hidden: tuple[int, ...]
    epochs: int
    batch_size: int

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

    @property
    def input_dim(self) -> int:
        return int(self.splits.train.x.shape[1])

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {name: bool(task.higher_is_better) for name, task in self.tasks.items()}


def _flat(split: MultiTaskSplit) -> MultiTaskSplit:
    return MultiTaskSplit(split.x.reshape(len(split), -1), split.y)


def digits_problem(seed: int = 0, n_train: int = 1000, n_val: int = 500, n_test: int = 1000,
                   hidden: Sequence[int] = (64,), epochs: int = 10, batch_size: int = 100) -> Problem:
    """:func:`mtl_course.data.multi_digits` with flattened ``8 x 16`` images: classify the
    left digit, the right digit (10 classes each) and the parity of their sum (2 classes)."""
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
    )


def regression_problem(seed: int = 0, n_train: int = 1000, n_val: int = 500, n_test: int = 1000,
                       dim: int = 8, correlation: float = 0.9, hidden: Sequence[int] = (32,),
                       epochs: int = 20, batch_size: int = 100) -> Problem:
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
    wall time of training (the only field that is not reproducible).
    """

    method: str
    lr: float
    seed: int
    val: dict[str, float]
    test: dict[str, float]
    seconds: float


def train_once(mtl: ModuleType, problem: Problem, method: str, seed: int, lr: float,
               tasks: Sequence[str] | None = None) -> Run:
    """Seed, build, train with ``mtl.fit`` (Adam) and score on val and test.

    ``tasks`` restricts training to some tasks (a single-task baseline is
    ``tasks=[name]`` with ``method="equal"``).
    """
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    names = list(problem.tasks) if tasks is None else list(tasks)
    mtl.seed_everything(seed)
    model = build_model(mtl, problem, names)  # checks the task names
    specs = {t: problem.tasks[t] for t in names}
    start = time.perf_counter()
    mtl.fit(model, problem.splits.train, specs, method=method, epochs=problem.epochs,
            batch_size=problem.batch_size, lr=lr, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    return Run(method=method, lr=float(lr), seed=int(seed),
               val=mtl.evaluate(model, problem.splits.val, specs),
               test=mtl.evaluate(model, problem.splits.test, specs), seconds=seconds)


def _mean_scores(runs: Sequence[Run], split: str) -> dict[str, float]:
    tasks = list(getattr(runs[0], split))
    return {t: float(np.mean([getattr(r, split)[t] for r in runs])) for t in tasks}


def _better(value: float, best: float | None, higher: bool) -> bool:
    return best is None or (value > best if higher else value < best)


@dataclass
class BenchmarkResult:
    """Every run of :func:`run_benchmark` and the choices it made.

    Attributes:
        problem: the :class:`Problem`.
        runs: all runs, tuning runs included (single-task runs have
            ``method == SINGLE_TASK`` and score only their own task).
        baseline_lr: the learning rate kept for equal weighting (and used by
            every other method).
        single_task_lr: task -> the learning rate kept for its single-task baseline.
        seeds: the seeds of every method's runs.
    """

    problem: Problem
    runs: list[Run]
    baseline_lr: float
    single_task_lr: dict[str, float]
    seeds: tuple[int, ...]

    def single_task_scores(self, split: str = "test") -> dict[str, float]:
        """Task -> the mean (over seeds) score of its tuned single-task baseline."""
        return {t: _mean_scores([r for r in self.runs if r.method == SINGLE_TASK and r.lr == lr
                                 and t in r.test], split)[t]
                for t, lr in self.single_task_lr.items()}

    def method_runs(self, method: str, lr: float | None = None) -> list[Run]:
        """The runs of a multi-task method at ``lr`` (default: the kept one), in seed order."""
        lr = self.baseline_lr if lr is None else lr
        runs = sorted((r for r in self.runs if r.method == method and r.lr == lr), key=lambda r: r.seed)
        if not runs:
            raise KeyError(f"no runs of {method!r} at lr={lr}")
        return runs

    def delta_m(self, method: str, lr: float | None = None, split: str = "test") -> np.ndarray:
        """:math:`\\Delta_m` (percent, higher is better) of each seed's run against the
        single-task baselines' mean score on ``split``."""
        base = self.single_task_scores(split)
        return np.array([delta_m(getattr(r, split), base, self.problem.higher_is_better)
                         for r in self.method_runs(method, lr)])

    @property
    def methods(self) -> list[str]:
        """The multi-task methods run at the kept learning rate, in :data:`ALL_METHODS` order."""
        present = {r.method for r in self.runs if r.method != SINGLE_TASK and r.lr == self.baseline_lr}
        return [m for m in ALL_METHODS if m in present] + sorted(present - set(ALL_METHODS))

    def summary(self) -> list[dict[str, Any]]:
        """One row per method (single-task first): mean and std over seeds of each task's test
        metric and of :math:`\\Delta_m`, and the paired difference to equal weighting
        (:func:`paired_difference`; None for equal weighting itself and with a single seed)."""
        rows = []
        st_runs = {t: [r for r in self.runs if r.method == SINGLE_TASK and r.lr == lr and t in r.test]
                   for t, lr in self.single_task_lr.items()}
        row: dict[str, Any] = {"method": SINGLE_TASK}
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
            row = {"method": method}
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


def run_benchmark(mtl: ModuleType, problem: Problem, methods: Sequence[str] = ALL_METHODS,
                  seeds: Sequence[int] = (0, 1, 2), lrs: Sequence[float] = (1e-2, 3e-2, 1e-1),
                  progress: bool = False) -> BenchmarkResult:
    """Run the protocol of this module's docstring and return every run.

    Args:
        mtl: :mod:`mtl_course.torch` or :mod:`mtl_course.tf`.
        problem: the data, tasks, model size and training budget.
        methods: ``fit`` method names; equal weighting is always run (it is
            the tuned baseline).
        seeds: one run per seed and method (model initialisation and batch order).
        lrs: the learning-rate grid of the single-task baselines and of equal weighting.
        progress: a ``tqdm.tqdm`` bar over the runs.
    """
    seeds = tuple(int(s) for s in seeds)
    lrs = tuple(float(lr) for lr in lrs)
    methods = list(dict.fromkeys(methods))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    if not lrs:
        raise ValueError("lrs must not be empty")
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; use names from {ALL_METHODS}")
    import tqdm

    names = list(problem.tasks)
    others = [m for m in methods if m != BASELINE]
    total = len(lrs) * len(seeds) * (len(names) + 1) + len(others) * len(seeds)
    bar = tqdm.tqdm(total=total, desc=problem.name, unit="run", disable=not progress or None)
    runs: list[Run] = []

    def record(run: Run) -> Run:
        runs.append(run)
        bar.update()
        return run

    higher = problem.higher_is_better
    # 1. single-task baselines, each task's learning rate chosen on validation
    single_lr: dict[str, float] = {}
    for t in names:
        best = None
        for lr in lrs:
            val = np.mean([record(replace(train_once(mtl, problem, BASELINE, s, lr, [t]), method=SINGLE_TASK)).val[t]
                           for s in seeds])
            if _better(val, best, higher[t]):
                best, single_lr[t] = val, lr
    # 2. equal weighting, learning rate chosen by validation delta_m against the tuned baselines
    st_val = {t: float(np.mean([r.val[t] for r in runs if r.method == SINGLE_TASK and r.lr == single_lr[t] and t in r.val]))
              for t in names}
    best, baseline_lr = None, lrs[0]
    for lr in lrs:
        scores = _mean_scores([record(train_once(mtl, problem, BASELINE, s, lr)) for s in seeds], "val")
        value = delta_m(scores, st_val, higher)
        if _better(value, best, True):
            best, baseline_lr = value, lr
    # 3. every other method at that learning rate
    for method in others:
        for s in seeds:
            record(train_once(mtl, problem, method, s, baseline_lr))
    bar.close()
    return BenchmarkResult(problem=problem, runs=runs, baseline_lr=baseline_lr,
                           single_task_lr=single_lr, seeds=seeds)


# --------------------------------------------------------------------------
# presentation
# --------------------------------------------------------------------------


def format_table(result: BenchmarkResult, digits: int = 3) -> str:
    """The summary as a fixed-width text table: ``mean ± std`` of each task's test metric
    and of :math:`\\Delta_m` (percent), and the paired difference to equal weighting
    (``mean ± t-interval half width``, ``*`` when the interval excludes 0).

    Every number has the digits its spread over seeds justifies (:func:`mtl_course.stats.format_spread`:
    to the leading digit of the std or half-width, one fewer near a rounding boundary), so that another
    machine's float32 rounding does not change a printed digit; ``digits`` decimals where the spread is 0.
    """
    rows = result.summary()
    tasks = list(result.problem.tasks)
    header = ["method", *tasks, "delta_m %", "vs equal (pp)"]
    lines = []
    for row in rows:
        cells = [row["method"]]
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
    """Per method, each seed's :math:`\\Delta_m` (dots) and their mean ± std (bar);
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
    ax.set_title(f"{result.problem.name} (lr {result.baseline_lr:g}, {len(result.seeds)} seeds)")
    return ax
