"""Every number chapter 14 copies from another chapter is still what that chapter printed.

Chapter 14 answers its questions with numbers the other chapters print. When a chapter
changes and prints another number, chapter 14 must change with it; this test notices.
Each entry of ``QUOTES`` is (chapter, printed, quoted):

* ``chapter``: the notebook the number comes from (its stem, ``book/<chapter>.ipynb``);
* ``printed``: a piece of that chapter's stored output that holds the number, with its
  label, so that a number of the same value elsewhere in the output does not count;
* ``quoted``: the text of chapter 14 (prose or code) that copies it.

Whitespace runs count as one space on both sides. To update after a chapter changes:
re-derive the answer in chapter 14 from the chapter's new output, then update the
entry (or remove it with the sentence that quoted it).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[2] / "book"
CHAPTER_14 = "14_challenges_faq"

QUOTES: list[tuple[str, str, str]] = [
    # Chapter 1: the data-efficiency tables (the CH1_MSE cell) and the deep-network verdicts.
    ("01_why_mtl", "single-task (ridge) 1.053 +-0.32 0.856 +-0.21 0.678 +-0.15 0.438 +-0.05 0.324 +-0.01",
     '"single-task": [1.053, 0.856, 0.678, 0.438, 0.324]'),
    ("01_why_mtl", "pooled (ridge) 0.485 +-0.05 0.397 +-0.01 0.375 +-0.01 0.357 +-0.00 0.348 +-0.00",
     '"pooled": [0.485, 0.397, 0.375, 0.357, 0.348]'),
    ("01_why_mtl", "regularized MTL 0.491 +-0.05 0.392 +-0.01 0.359 +-0.01 0.328 +-0.00 0.301 +-0.00",
     '"regularized MTL": [0.491, 0.392, 0.359, 0.328, 0.301]'),
    ("01_why_mtl", "single-task (ridge) 1.038 +-0.04 0.893 +-0.04 0.670 +-0.05 0.441 +-0.03 0.328 +-0.01",
     '"single-task": [1.038, 0.893, 0.670, 0.441, 0.328]'),
    ("01_why_mtl", "pooled (ridge) 1.205 +-0.02 1.188 +-0.03 1.193 +-0.02 1.168 +-0.03 1.150 +-0.02",
     '"pooled": [1.205, 1.188, 1.193, 1.168, 1.150]'),
    ("01_why_mtl", "regularized MTL 1.044 +-0.03 0.979 +-0.04 0.711 +-0.04 0.450 +-0.03 0.329 +-0.01",
     '"regularized MTL": [1.044, 0.979, 0.711, 0.450, 0.329]'),
    ("01_why_mtl", "tasks share a subspace 0.305 ± 0.009 0.531 ± 0.027",
     "$0.305 \\pm 0.009$ against $0.531 \\pm 0.027$"),
    ("01_why_mtl", "hard sharing better on 10 of 10 seeds", "(better on 10 of 10 seeds)"),
    ("01_why_mtl", "ten different subspaces 0.902 ± 0.199 0.570 ± 0.054",
     "$0.902 \\pm 0.199$ against $0.570 \\pm 0.054$"),
    ("01_why_mtl", "separate training beats hard sharing: mean difference 0.332, 95% CI [0.18, 0.484], "
     "hard sharing better on 0 of 10 seeds", "worse than separate networks on every one of ten"),
    # Chapter 2: loss scales and the weight grid.
    ("02_objective", "100 1.038 0.066 | 0.287 0.316", "(loss 1.038 against"),
    ("02_objective", "1 0.283 0.319 | 0.287 0.316", "0.283 at $c = 1$), and dividing each loss by its initial value restored 0.287"),
    ("02_objective", "single task (alpha = 1) 0.259 +- 0.093", "no sharing\n($0.259 \\pm 0.093$"),
    ("02_objective", "equal weights (alpha = 0.5) 0.175 +- 0.029", "(task-1 loss $0.175 \\pm 0.029$)"),
    ("02_objective", "grid search on validation 0.164 +- 0.018", "validation data ($0.164 \\pm 0.018$)"),
    ("02_objective", "equal weights (alpha = 0.5) beats single task (alpha = 1): mean difference -0.0835, "
     "95% CI [-0.12, -0.0466], equal weights (alpha = 0.5) better on 17 of 20 seeds", "better on 17 of 20"),
    ("02_objective", "grid search on validation beats equal weights (alpha = 0.5): mean difference -0.0114, "
     "95% CI [-0.0221, -0.000698], grid search on validation better on 14 of 20 seeds",
     "beat\nequal weights by a small margin (mean difference $-0.0114$, 95 % interval $[-0.0221, -0.000698]$, "
     "better\non 14 of 20)"),
    ("02_objective", "front points that some weight reaches: 10 of 201", "10 of 201 points of a concave front"),
    # Chapter 3: the diabetes splits.
    ("03_classical_mtl", "regularized MTL beats independent ridge: mean difference -372, 95% CI [-521, -223], "
     "regularized MTL better on 17 of 20 seeds", "regularized MTL beat separate models\n(better on 17 of 20 splits)"),
    ("03_classical_mtl", "regularized MTL beats pooled ridge: mean difference -123, 95% CI [-190, -56], "
     "regularized MTL better on 16 of 20 seeds", "and pooled ones (better on 16)"),
    ("03_classical_mtl", "regularized MTL vs pooled ridge: no difference established at 10 seeds",
     "no difference was established between pooled ridge and regularized MTL with 8 samples per task"),
    ("03_classical_mtl", "5 samples, shared mean: pooled ridge beats regularized MTL:", "and pooled ridge was better with 5"),
    # Chapter 4: the two-digit task (float64 runs, so nbval compares these verdicts too).
    ("04_hard_sharing", "delta_m: hard, same budget beats separate: mean difference 1.2, 95% CI [0.5, 1.9], "
     "hard, same budget better on 9 of 10 seeds",
     "beat separate networks on $\\Delta_m$ by $+1.2$ points\n(95 % interval $[0.5, 1.9]$, better on 9 of 10 seeds)"),
    ("04_hard_sharing", "delta_m: hard, same width vs separate: no difference established at 10 seeds: "
     "mean difference 0.4, 95% CI [-0.3, 1.1], hard, same width better on 7 of 10 seeds",
     "no difference was established ($+0.4$ points, $[-0.3, 1.1]$, better on 7 of 10 seeds)"),
    ("04_hard_sharing", "parity: hard, same budget beats separate:", "there both shared networks beat the separate network"),
    ("04_hard_sharing", "parity: hard, same width beats separate:", "there both shared networks beat the separate network"),
    ("04_hard_sharing", "right: hard, same budget vs separate: no difference established at 10 seeds",
     "the right digit no difference was established"),
    ("04_hard_sharing", "right: hard, same width vs separate: no difference established at 10 seeds",
     "the right digit no difference was established"),
    ("04_hard_sharing", "left: hard, same budget vs separate: no difference established at 10 seeds",
     "on the left digit only the same-width network\ndiffered"),
    ("04_hard_sharing", "left: separate beats hard, same width: mean difference -0.0073,",
     "the separate networks beat it, by less than one point"),
    ("04_hard_sharing", "separate (3 nets) 64 31734", "31734 for three separate ones"),
    ("04_hard_sharing", "hard, same width 64 15222", "the same-width shared network had 15222"),
    # Chapter 6: gate disagreement, and the error verdicts of the correlation sweep.
    ("06_mixture_of_experts", "p = 1: mean 0.17,", "(mean disagreement 0.17 at\ncorrelation 1"),
    ("06_mixture_of_experts", "p = 0: mean 0.56,", "0.56 at 0, larger at 0 on 5 of 5 seeds)"),
    ("06_mixture_of_experts", "larger disagreement: p = 0 beats p = 1: mean difference 0.39, 95% CI [0.12, 0.67], "
     "p = 0 better on 5 of 5 seeds", "larger at 0 on 5 of 5 seeds"),
    *[("06_mixture_of_experts", f"{model} vs shared-bottom: no difference established at 5 seeds",
       "no difference\nwas established at five seeds between shared-bottom and any gated model (OMoE, MMoE, PLE)")
      for model in ("OMoE", "MMoE", "PLE")],
    # Chapter 7: four tasks of different scales, each method at its tuned learning rate, 5 paired seeds;
    # its table prints each method's error minus equal weighting's on the same seed, mean over seeds, at
    # the digits the spread of those differences justifies (columns t0 t1 t2 t3, task mean).
    ("07_loss_weighting", "method t0 t1 t2 t3 task mean static -0.3 -0.2 -0.1 0.0 -0.2",
     "(relative test error lower by\n0.3 on average, paired seed by seed"),
    ("07_loss_weighting", "method t0 t1 t2 t3 task mean static -0.3 -0.2 -0.1 0.0 -0.2",
     "mean over the tasks (lower by 0.2)"),
    ("07_loss_weighting", "method t0 t1 t2 t3 task mean static -0.3 -0.2 -0.1 0.0 -0.2",
     "(relative test error higher by 0.3 on average over five\n  paired seeds"),
    ("07_loss_weighting", "t0 static beats equal (static better on 5 of 5 seeds)",
     "better on 5 of 5 seeds, {doc}`07_loss_weighting`)"),
    ("07_loss_weighting", "t0 static beats equal (static better on 5 of 5 seeds)",
     "beat tuned equal weighting on every seed, on the small task"),
    ("07_loss_weighting", "task mean static beats equal (static better on 5 of 5 seeds)", "and on the mean over the tasks"),
    *[("07_loss_weighting", f"{what} {method} vs equal: no difference established at 5 seeds",
       "GradNorm, uncertainty weighting and DWA showed no difference from equal weighting at five seeds, "
       "on the small task or on the mean")
      for method in ("uncertainty", "gradnorm", "dwa") for what in ("t0", "task mean")],
    ("07_loss_weighting", "task mean, the paper's ordering: gradnorm vs uncertainty: no difference established at 5 seeds",
     "no difference was established between GradNorm and uncertainty weighting either"),
    ("07_loss_weighting", "t0 equal beats rlw (rlw better on 0 of 5 seeds)", "equal weighting beat random weights (RLW)"),
    ("07_loss_weighting", "task mean equal beats rlw (rlw better on 0 of 5 seeds)", "equal weighting beat random weights (RLW)"),
    ("07_loss_weighting", "the same grid for 4 tasks: 125 runs, for 10 tasks: 1953125", "125 for four and 1953125 for ten"),
    # Chapter 8: conflict statistics.
    ("08_gradient_conflict", "correlation 0.9 128 0.501 0.062", "against 0.062 for correlated"),
    ("08_gradient_conflict", "correlation -0.9 128 -0.084 0.633", "(0.633 of the steps for anti-correlated"),
    ("08_gradient_conflict", "correlation 0.9, task 2 x 10 128 0.061 0.406 29.46", "ratio of gradient norms (29.46"),
    ("08_gradient_conflict", "CAGrad setting mean 1/3, mgda 3/3, pcgrad 3/3, cagrad 3/3",
     "plain averaging stayed in the valleys from two of three starts while MGDA, PCGrad and CAGrad reached "
     "the Pareto set from all three"),
    ("08_gradient_conflict", "mean yes x1= 0.0 d=0.0 yes x1= 0.0 d=0.0 yes x1= 0.0 d=0.0",
     "at ten times the learning rate plain averaging reached the set from all three starts too"),
    # Chapter 9: the benchmark (five paired seeds, every method at its tuned learning rate).
    ("09_evaluation", "single-task 0.94 ± 0.004 0.95 ± 0.004 0.78 ± 0.01", '"single-task": (0.94, 0.95, 0.78)'),
    ("09_evaluation", "equal 0.03 0.93 ± 0.01 0.93 ± 0.008 0.75 ± 0.02", '"equal": (0.93, 0.93, 0.75)'),
    ("09_evaluation", "uncertainty 0.01 0.94 ± 0.008 0.946 ± 0.003 0.72 ± 0.02", '"uncertainty": (0.94, 0.946, 0.72)'),
    ("09_evaluation", "gradnorm 0.01 0.93 ± 0.003 0.935 ± 0.004 0.79 ± 0.010", '"gradnorm": (0.93, 0.935, 0.79)'),
    ("09_evaluation", "dwa 0.01 0.938 ± 0.002 0.94 ± 0.008 0.7 ± 0.03", '"dwa": (0.938, 0.94, 0.7)'),
    ("09_evaluation", "rlw 0.003 0.94 ± 0.006 0.95 ± 0.005 0.7 ± 0.04", '"rlw": (0.94, 0.95, 0.7)'),
    ("09_evaluation", "mean 0.03 0.9 ± 0.01 0.9 ± 0.01 0.75 ± 0.02", '"mean": (0.9, 0.9, 0.75)'),
    ("09_evaluation", "mgda 0.03 0.92 ± 0.009 0.94 ± 0.01 0.7 ± 0.04", '"mgda": (0.92, 0.94, 0.7)'),
    ("09_evaluation", "pcgrad 0.03 0.93 ± 0.009 0.9 ± 0.01 0.76 ± 0.03", '"pcgrad": (0.93, 0.9, 0.76)'),
    ("09_evaluation", "cagrad 0.01 0.942 ± 0.004 0.95 ± 0.004 0.8 ± 0.03", '"cagrad": (0.942, 0.95, 0.8)'),
    ("09_evaluation", "nash_mtl 0.01 0.94 ± 0.007 0.95 ± 0.003 0.74 ± 0.02", '"nash_mtl": (0.94, 0.95, 0.74)'),
    ("09_evaluation", "imtl_g 0.003 0.94 ± 0.005 0.95 ± 0.003 0.74 ± 0.02", '"imtl_g": (0.94, 0.95, 0.74)'),
    ("09_evaluation", "aligned_mtl 0.01 0.940 ± 0.004 0.95 ± 0.005 0.7 ± 0.01", '"aligned_mtl": (0.940, 0.95, 0.7)'),
    ("09_evaluation", "upgrad 0.03 0.93 ± 0.02 0.93 ± 0.02 0.76 ± 0.01", '"upgrad": (0.93, 0.93, 0.76)'),
    ("09_evaluation", "multi_digits: 12 methods compared with tuned equal weighting; better beyond noise: none; "
     "worse beyond noise: none; within noise: 12", "12 of 12 methods were within noise of it"),
    ("09_evaluation", "multi_digits: 12 methods compared with tuned equal weighting; better beyond noise: none; "
     "worse beyond noise: none; within noise: 12", "and none was worse (12 of 12 within noise)"),
    ("09_evaluation", "rlw 0.001 [0.003] 0.01 0.03", "bracketed, it\nmoved to 0.003"),
    ("09_evaluation", "rlw vs equal: no difference established at 5 seeds: mean difference -1, 95% CI [-4, 2], "
     "rlw better on 2 of 5 seeds", "no difference was established (RLW better on 2 of 5 seeds)"),
    ("09_evaluation", "one grid step, equal weighting: lr 0.03 vs lr 0.01: no difference established at 5 seeds: "
     "mean difference 0, 95% CI [-3, 3], lr 0.03 better on 3 of 5 seeds",
     "made no difference established for equal weighting (mean difference 0, 95 % interval $[-3, 3]$)"),
    ("09_evaluation", "one grid step, equal weighting: lr 0.03 beats lr 0.1: mean difference 50, 95% CI [37, 62], "
     "lr 0.03 better on 5 of 5 seeds", "cost it 50 points of $\\Delta_m$ (interval $[37, 62]$)"),
    ("09_evaluation", "best vs worst of the 12 methods other than RLW, each at its kept lr: gradnorm beats uncertainty: "
     "mean difference 2, 95% CI [1, 4], gradnorm better on 5 of 5 seeds",
     "(GradNorm and uncertainty weighting) differed by an established 2 points (interval $[1, 4]$)"),
    ("09_evaluation", "cagrad 0.01 0.942 ± 0.004 0.95 ± 0.004 0.8 ± 0.03",
     "its parity accuracy prints as 0.8 (one digit, because its mean sits near a rounding boundary and its "
     "standard deviation over seeds is 0.03) against 0.78 for the single-task networks"),
    ("09_evaluation", "cagrad vs equal: no difference established at 5 seeds",
     "Chapter 9's paired verdict of CAGrad against equal weighting establishes no difference"),
    # Chapter 10: task relationships.
    ("10_task_relationships", "mean cosine within groups 0.413, across groups 0.001", "0.413 within groups and 0.001 across"),
    ("10_task_relationships", "within groups 2.943, across groups -0.105", "2.943 within and $-0.105$"),
    ("10_task_relationships", "(score 0.1766)", "against 0.1766"),
    ("10_task_relationships", "all tasks in one network scores 0.0303", "scored 0.0303"),
    ("10_task_relationships", "[[ 6.003 2.556", "$Z_{a0 \\to a1} \\times 100 = 2.556$"),
    ("10_task_relationships", "[ 2.871 6.039", "$Z_{a1 \\to a0} \\times 100 = 2.871$"),
    ("10_task_relationships", "a0 alone 1.24 ± 0.03 1.45 ± 0.04", "from $1.24 \\pm 0.03$"),
    ("10_task_relationships", "a0 + b0 (other group) 1.36 ± 0.13 1.37 ± 0.05", "to $1.36 \\pm 0.13$"),
    ("10_task_relationships", "a0 alone 1.24 ± 0.03 1.45 ± 0.04", "($1.45 \\pm 0.04$ to"),
    ("10_task_relationships", "a0 + b0 (other group) 1.36 ± 0.13 1.37 ± 0.05", "to $1.37 \\pm 0.05$,"),
    ("10_task_relationships", "width 1, test MSE of a0:", "with a trunk of width 1"),
    ("10_task_relationships", "a0 alone beats a0 + b0 (other group): mean difference 0.12, 95% CI [0.018, 0.22], "
     "a0 + b0 (other group) better on 1 of 10 seeds", "(established at ten paired seeds, b0 helping on only 1 of them;"),
    ("10_task_relationships", "width 1, the first 5 seeds only: a0 + b0 (other group) vs a0 alone: "
     "no difference established at 5 seeds", "at the first five seeds no difference\nwas established)"),
    ("10_task_relationships", "a0 + b0 (other group) beats a0 alone: mean difference -0.076, 95% CI [-0.098, -0.054], "
     "a0 + b0 (other group) better on 10 of 10 seeds", "better on 10 of 10 seeds)"),
    ("10_task_relationships", "test MSE of a0 (10 seeds) width 1 width 8", "three settings, two\nwidths, ten paired seeds"),
    ("10_task_relationships", "b0 -> a0: affinity x 100 = -2.423, mean gradient cosine = -0.227",
     "$-2.423$, with a mean gradient cosine of $-0.227$"),
    # Chapter 11: few-shot adaptation, the verdicts (eight learners, five paired seeds).
    *[("11_mtl_transfer_meta", f"{approach}: early stopping, not the cap of {cap}, ended 15 of 15 runs",
       "with every pre-training stopped early on validation data")
      for approach, cap in [("pooled", "10000 epochs"), ("multi-task", "10000 epochs"), ("reptile", "30000 outer steps")]],
    *[("11_mtl_transfer_meta", f"K = {k}: reptile fine-tune against every other learner reptile fine-tune beats random ridge head: "
       f"mean difference {diff}, reptile fine-tune better on 5 of 5 seeds reptile fine-tune beats random fine-tune:",
       "With 2 and 5 examples, Reptile fine-tuned was best: it beat all seven others")
      for k, diff in [(2, "-5, 95% CI [-6, -3]"), (5, "-5.0, 95% CI [-5.9, -4.0]")]],
    *[("11_mtl_transfer_meta", f"reptile fine-tune beats {other}: mean difference {diff}, reptile fine-tune better on 5 of 5 seeds",
       "it beat all seven others")
      for other, diff in [("random fine-tune", "-2, 95% CI [-3, -1]"), ("pooled ridge head", "-4, 95% CI [-5, -3]"),
                          ("pooled fine-tune", "-2.1, 95% CI [-2.8, -1.4]"), ("multi-task ridge head", "-4, 95% CI [-6, -3]"),
                          ("multi-task fine-tune", "-2.6, 95% CI [-3.4, -1.7]"), ("reptile ridge head", "-3, 95% CI [-5, -2]"),
                          ("random fine-tune", "-2.9, 95% CI [-3.6, -2.2]"), ("pooled ridge head", "-2, 95% CI [-3, -1]"),
                          ("pooled fine-tune", "-2, 95% CI [-3, -1]"), ("multi-task ridge head", "-2, 95% CI [-4, -1]"),
                          ("multi-task fine-tune", "-2.4, 95% CI [-3.3, -1.6]"), ("reptile ridge head", "-1.8, 95% CI [-2.7, -1.0]")]],
    *[("11_mtl_transfer_meta", f"reptile fine-tune beats {other}: mean difference {diff}, reptile fine-tune better on 5 of 5 seeds",
       "With 10\nexamples it beat every other learner but a ridge head on the multi-task network")
      for other, diff in [("random ridge head", "-6, 95% CI [-11, -1]"), ("random fine-tune", "-4, 95% CI [-5, -2]"),
                          ("pooled ridge head", "-0.7, 95% CI [-1.3, -0.1]"), ("pooled fine-tune", "-2, 95% CI [-3, -1]"),
                          ("multi-task fine-tune", "-1.8, 95% CI [-2.8, -0.8]"), ("reptile ridge head", "-0.9, 95% CI [-1.3, -0.5]")]],
    ("11_mtl_transfer_meta", "reptile fine-tune vs multi-task ridge head: no difference established at 5 seeds: mean difference -1, "
     "95% CI [-4, 1]", "against which no\ndifference was established"),
    ("11_mtl_transfer_meta", "multi-task ridge head beats reptile fine-tune: mean difference 0.02, 95% CI [0.01, 0.04]",
     "a ridge head on the multi-task network beat Reptile\nfine-tuned, narrowly"),
    ("11_mtl_transfer_meta", "multi-task ridge head vs pooled ridge head: no difference established at 5 seeds",
     "between ridge heads on the pooled and on the multi-task network no\ndifference was established"),
    *[("11_mtl_transfer_meta", f"K = 20: {a} ridge head beats {a} fine-tune:",
       "at 20 examples the ridge\nhead beat fine-tuning on the random, the pooled and the multi-task network")
      for a in ("random", "pooled", "multi-task")],
    ("11_mtl_transfer_meta", "K = 20: reptile fine-tune beats reptile ridge head:", "but lost to it on the\nReptile network"),
    *[("11_mtl_transfer_meta", f"K = 2: {a} fine-tune beats {a} ridge head:",
       "at 2 examples fine-tuning beat the ridge head on the random, the pooled and the\nReptile network")
      for a in ("random", "pooled", "reptile")],
    # Chapter 12: dense prediction, multi-task against single-task networks.
    ("12_applications", "early stopping, not the 200-epoch cap, ended all 30 runs: True",
     "early stopping\n(not the epoch cap) ending all 30 trainings"),
    *[("12_applications", f"{metric}: multi-task vs single-task: no difference established at 10 seeds",
       "no difference established at ten paired seeds on mean IoU, on either depth\nmetric (abs-rel and RMSE)")
      for metric in ("segmentation mIoU", "depth abs_rel", "depth rmse")],
    ("12_applications", "Delta_m (against 0): multi-task vs single-task: no difference established at 10 seeds",
     "or on $\\Delta_m$, whose sign changed from seed to seed"),
    ("12_applications", "Delta_m negative on average: True; positive on some seeds: True",
     "or on $\\Delta_m$, whose sign changed from seed to seed"),
    ("12_applications", "segmentation pixel_acc: multi-task lower on average: True; an end of the 95% interval "
     "within 0.001 of zero: True", "was lower for the shared network on average, with an interval\nending at zero"),
    # Chapter 13: precision and data parallelism.
    ("13_scaling_up", "trained in float32 : training MSE task1 0.0259, task2 0.0197", "(task\n1: 0.0259 in both; task 2: 0.0197"),
    ("13_scaling_up", "trained in bfloat16: training MSE task1 0.0259, task2 0.0198", "and 0.0198)"),
    ("13_scaling_up", "MGDA weights from the float32 Jacobian: [0.36629", "(0.36629 against 0.36631)"),
    ("13_scaling_up", "MGDA weights from the bfloat16 Jacobian: [0.36631", "(0.36629 against 0.36631)"),
    ("13_scaling_up", "MGDA per replica, then average: relative difference to one process 0.042", "was 4.2 % off"),
    ("13_scaling_up", "all-reduce J, then MGDA: relative difference to one process below 1e-6: True",
     "relative difference below $10^{-6}$"),
]


def _normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@cache
def _stored_output(chapter: str) -> str:
    """The text of every stored output of a chapter (streams and plain-text results)."""
    notebook = nbformat.read(BOOK / f"{chapter}.ipynb", as_version=4)
    pieces = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                pieces.append(output.get("text", ""))
            elif "text/plain" in output.get("data", {}):
                pieces.append(output["data"]["text/plain"])
    return _normalized("\n".join(pieces))


@cache
def _chapter_14_source() -> str:
    notebook = nbformat.read(BOOK / f"{CHAPTER_14}.ipynb", as_version=4)
    return _normalized("\n".join(cell.source for cell in notebook.cells))


@pytest.mark.parametrize(("chapter", "printed", "quoted"), QUOTES,
                         ids=[f"{chapter}:{quoted[:40]}" for chapter, _, quoted in QUOTES])
def test_chapter_14_quotes_what_the_chapter_printed(chapter, printed, quoted):
    assert _normalized(printed) in _stored_output(chapter), (
        f"chapter 14 quotes {quoted!r} from {chapter}, whose stored output no longer prints "
        f"{printed!r}: re-derive that answer of chapter 14 from {chapter}'s new output and "
        f"update QUOTES in {Path(__file__).name}")
    assert _normalized(quoted) in _chapter_14_source(), (
        f"QUOTES names {quoted!r} as chapter 14's copy of {chapter}'s {printed!r}, but chapter 14 "
        "no longer contains it: update the entry (or remove it with the sentence that quoted it)")


def test_every_quoted_chapter_exists():
    for chapter in {chapter for chapter, _, _ in QUOTES}:
        assert (BOOK / f"{chapter}.ipynb").exists(), f"QUOTES names {chapter}, which is not in book/"


def test_the_check_catches_a_changed_number():
    chapter, printed, _ = QUOTES[0]
    changed = printed.replace("1.053", "1.054")
    assert _normalized(changed) not in _stored_output(chapter)
