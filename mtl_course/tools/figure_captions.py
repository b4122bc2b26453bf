"""Captions and alt text of the chapters' figures, written into cell metadata.

Each figure a chapter draws is the image output of one code cell. The book
renders it as a numbered figure with a caption and an alt text when the cell's
metadata says so (myst-nb's ``mystnb: {figure: {caption, name}, image: {alt}}``).
The texts live here, keyed by notebook and cell id, so that they survive any
re-execution and can be written again after a merge:

    python -m mtl_course.tools.figure_captions            # write into every chapter
    python -m mtl_course.tools.figure_captions --check    # exit 1 if any is missing or stale

A caption says what the figure shows; the alt text describes it for a reader
who cannot see it. ``tests/book/test_figure_captions.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from mtl_course.tools.execute_chapters import chapter_paths


@dataclass(frozen=True)
class Figure:
    name: str     # the figure's label, for {numref}`name`
    caption: str  # MyST markdown
    alt: str      # plain text


FIGURES: dict[tuple[str, str], Figure] = {
    ("01_why_mtl.ipynb", "ba554b6c"): Figure(
        "ch1-fig-data-efficiency",
        "Test error against training examples per task for single-task ridge, pooled ridge and "
        "regularized MTL, with related tasks ($\\rho = 0.9$, left) and unrelated tasks "
        "($\\rho = 0$, right). Bands: one standard deviation over draws; dotted: the noise floor; "
        "dashed: the theoretical floor of pooling.",
        "Two line plots of test MSE against training examples per task on a log axis. With "
        "related tasks, pooled ridge and regularized MTL stay low from 5 examples on while "
        "single-task ridge starts high and falls toward them. With unrelated tasks, pooled ridge "
        "stays high near its theoretical floor, and regularized MTL follows single-task ridge down."),
    ("02_objective.ipynb", "426b8798"): Figure(
        "ch2-fig-pareto-convex",
        "Gradient descent on weighted sums of the two regression losses: the minimizers reached "
        "for each weight $\\alpha$ lie on the Pareto set (left, parameter space) and on the "
        "Pareto front (right, loss space).",
        "Left: a curve of Pareto-optimal parameters between the two task optima, with points "
        "coloured by the weight alpha lying on it. Right: the convex Pareto front of the two "
        "losses, with the same coloured points spread along the whole front."),
    ("02_objective.ipynb", "510401a0"): Figure(
        "ch2-fig-pareto-concave",
        "A concave Pareto front (Fonseca-Fleming). Left: the front, the chord between its "
        "ends, and where gradient descent on a weighted sum ends, one marker shape per "
        "start (nested, so that coinciding runs stay visible); the middle of the front is "
        "never reached. Right: the end point $u$ of each run against the weight $\\alpha$, "
        "for four starts, drawn 0.03 apart because they coincide at the ends.",
        "Left: a concave curved front bulging above a dashed chord; the runs of all four "
        "starts, drawn as nested hollow circles, squares, triangles and diamonds, end at "
        "one of the two ends, and a red star marks the unreached middle. Right: four "
        "slightly offset step curves, one per start, jump from u = -1 to u = +1 as alpha "
        "grows, at a threshold that depends on the start."),
    ("02_objective.ipynb", "42dda3ea"): Figure(
        "ch2-fig-rescaling",
        "Multiplying the loss of task 2 by 1, 10 or 100 moves the equal-weights solution "
        "along the Pareto front (squares); normalizing each loss by its initial value "
        "brings it back to the same point (nested circles).",
        "The Pareto front in loss space. The squares of equal weighting move to the far "
        "right end of the front as task 2's loss is scaled by 10 and 100, while three "
        "nested hollow circles of different sizes, the normalized runs, sit at one point "
        "in the middle of the front, next to the square of scale 1."),
    ("02_objective.ipynb", "5aa15cbb"): Figure(
        "ch2-fig-grid-search",
        "Grid search over the weight of task 1. Left: validation and test loss of task 1 "
        "against $\\alpha$ on one data set, the 25-75 % band of the test loss over 20 data "
        "sets, and the weight chosen on validation (dotted). Right: how often each weight "
        "was chosen over the 20 data sets.",
        "Left: two U-shaped curves, validation (filled circles) and test (hollow squares, "
        "dashed) loss, against alpha from 0 to 1, over a shaded band that widens at both "
        "ends, and a vertical dotted line near the bottom of the U where the weight was "
        "chosen. Right: a bar chart of the chosen alpha over 20 data sets, spread from 0 "
        "to 0.9 around the dashed line of equal weights."),
    ("03_classical_mtl.ipynb", "2335b911"): Figure(
        "ch3-fig-regularization-path",
        "Test error of regularized MTL along the penalty $\\lambda_1$ on the task offsets "
        "(mean and standard deviation over 10 draws), between independent ridge (small "
        "$\\lambda_1$) and pooled ridge (large $\\lambda_1$); the baselines are tuned on "
        "validation data, and the red triangles mark the $\\lambda_1$ that validation "
        "chose, sized by the number of draws.",
        "A log-log curve of test MSE against lambda_1 with error bars: it starts at the "
        "level of independent ridge, drops steeply to the band of tuned pooled ridge near "
        "lambda_1 = 100 and stays there; the independent-ridge band lies far above."),
    ("03_classical_mtl.ipynb", "ff0adac4"): Figure(
        "ch3-fig-shared-support",
        "Weights of the planted shared-support problem (tasks by features): the planted "
        "weights, independent ridge, and the $L_{2,1}$ penalty, which keeps the same few "
        "features in every task and sets the other columns exactly to zero.",
        "Three heat maps of a ten-task by thirty-feature weight matrix. The planted and the "
        "L2,1 maps have only a few non-zero columns, the same in every task; the "
        "independent-ridge map has small non-zero weights everywhere."),
    ("03_classical_mtl.ipynb", "c61073d4"): Figure(
        "ch3-fig-singular-values",
        "Singular values of the fitted weight matrix for a rank-2 problem: independent ridge "
        "spreads them over all ten, the trace norm sets all but a few to zero, and the shared "
        "representation with $k = 2$ has rank 2, like the planted $W$.",
        "Singular value against index on a symmetric log axis. The planted matrix has two "
        "non-zero values; independent ridge decays slowly over all ten; the trace norm with "
        "alpha 10 drops to zero after six, and with alpha 40 and the shared representation "
        "after two."),
    ("03_classical_mtl.ipynb", "fd3ab5bd"): Figure(
        "ch3-fig-task-correlation",
        "The planted task correlation of two anti-correlated groups of four tasks (left) and "
        "the correlation MTRL learns without seeing the groups (right).",
        "Two eight-by-eight heat maps. The planted one has two red blocks of positive "
        "correlation on the diagonal and blue negative blocks off it; the learned one shows the "
        "same block pattern, with weaker and uneven values."),
    ("03_classical_mtl.ipynb", "3d6eeb1d"): Figure(
        "ch3-fig-learning-curves",
        "Test error against training examples per task for every method on the four "
        "planted structures (mean over 5 draws; bars from the best to the worst draw; the "
        "methods are shifted slightly sideways so that their bars stay visible); the "
        "baselines are dashed. Each structure is learned best by the method built for it.",
        "Four panels of test MSE against training samples per task. Shared mean: pooled "
        "ridge and regularized MTL are lowest at small sizes. Shared support: L2,1 drops "
        "fastest. Low rank: the shared representation and trace norm are lowest. Two "
        "anti-correlated groups: pooled ridge stays high, and trace norm leads at 10 and "
        "20 examples."),
    ("04_hard_sharing.ipynb", "5d66f3d4"): Figure(
        "ch4-fig-digit-pairs",
        "Six training examples of the two-digit task: each image holds a left and a right "
        "digit, labelled with both digits and the parity of their sum.",
        "Six small grey images, each showing two handwritten digits side by side, titled with "
        "the left digit, the right digit and the parity, such as '6 | 9 parity 1'."),
    ("04_hard_sharing.ipynb", "3e77980b"): Figure(
        "ch4-fig-learning-curves",
        "Validation accuracy per epoch (seed 0) of the separate networks and the two "
        "hard-shared networks, for the tasks 'left', 'right' and 'parity', each trained until "
        "its validation accuracy stopped improving; a dot marks the epoch whose weights were kept.",
        "Three panels of validation accuracy against epoch, with the legend below them. The "
        "three networks climb together on the two digit tasks. On parity the separate network "
        "peaks early and stops first, while the two shared networks keep improving for longer "
        "and end higher."),
    ("05_soft_sharing.ipynb", "407678de"): Figure(
        "ch5-fig-relatedness-sweep",
        "The seven methods as the task correlation $p$ falls from 1 to 0: relative test MSE, "
        "mean and standard deviation over 10 seeds (left), and each method's paired difference "
        "to separate networks with weight decay, the control, with its 95 % interval (right).",
        "Left: seven groups of markers per correlation with wide, overlapping bars; separate "
        "networks with weight decay have the lowest mean, near 0.32, the others lie near 0.4. "
        "Right: every other method's difference to the control is positive, between about 0.05 "
        "and 0.11; most intervals at p = 1 cross zero, more of them exclude it at p = 0.5 and 0."),
    ("05_soft_sharing.ipynb", "6a637fb8"): Figure(
        "ch5-fig-coupling-strength",
        "Soft $L_2$ sharing as the coupling strength $\\lambda$ grows: paired difference to "
        "separate networks with its 95 % interval (left), and the distance between the two "
        "towers at the best epoch, mean and standard deviation over seeds (right).",
        "Left: at p = 1 the difference falls below zero as lambda grows, to about -0.06 at "
        "lambda = 1 with a wide interval; at p = 0.5 and p = 0 it stays near zero and rises "
        "above it at lambda = 1. Right: the distance between the towers falls from about 7 "
        "to below 0.5 as lambda grows, alike for the three correlations."),
    ("06_mixture_of_experts.ipynb", "95dfe018"): Figure(
        "ch6-fig-correlation-sweep",
        "The MMoE paper's synthetic experiment at small scale. Left: the relative test "
        "MSE of every model on every seed (small markers, side by side) and its mean over "
        "the five seeds (bar), at three task correlations. Right: each gated model's "
        "paired difference from shared-bottom, with its 95 % interval over the seeds; an "
        "interval that crosses zero establishes no difference.",
        "Left: four groups of markers per correlation, one colour and shape per model, on "
        "a log scale; each group has five seed markers and a bar at their mean. Right: "
        "for OMoE, MMoE and PLE, a point with an error bar per correlation showing the "
        "mean paired difference from shared-bottom, with a horizontal line at zero."),
    ("06_mixture_of_experts.ipynb", "00219c93"): Figure(
        "ch6-fig-gates",
        "Gate weights of MMoE over four experts for 30 test inputs, per task, with "
        "identical tasks ($p = 1$) and unrelated tasks ($p = 0$) (seed 0), and the mean "
        "gate weights of a one-level PLE at $p = 0$.",
        "Four heat maps of gate weight, inputs by experts: at p = 1 the two tasks' gates "
        "look alike; at p = 0 they differ and some inputs put most weight on a single "
        "expert. A fifth panel stacks PLE's mean gate weights per task: a fifth to a "
        "quarter on the task's own expert and the rest on the two shared experts."),
    ("06_mixture_of_experts.ipynb", "fc63d8dd"): Figure(
        "ch6-fig-esmm-calibration",
        "Mean predicted conversion rate over all test impressions, per seed, for ESMM, a "
        "model trained on clicked impressions only, and the truth; dotted: the true mean on "
        "clicked impressions.",
        "Grouped bars for three seeds. ESMM's bars match the true bars; the click-only model's "
        "bars are higher; all lie well below the dotted line of the mean on clicked "
        "impressions."),
    ("07_loss_weighting.ipynb", "c4a1f0b6"): Figure(
        "ch7-fig-grid",
        "The grid search over static weights $(1, w_2)$ on the two-task problem: relative test "
        "error of each task against $w_2$, one line per seed and their mean (black); dotted: the "
        "error of predicting the mean.",
        "Two line plots against w2 on a log axis from 1e-4 to 1. Left, the small task t0: every "
        "seed's error rises from about 0.5 at w2 = 1e-4 to about 1 at w2 = 1. Right, the large "
        "task t1: four seeds' errors rise from about 0.45 to between 0.55 and 0.75, while one "
        "seed jumps to about 1 at w2 = 0.1 and 1, lifting the mean there to about 0.65."),
    ("07_loss_weighting.ipynb", "e7b3c9d2"): Figure(
        "ch7-fig-errors-per-seed",
        "Relative test error of every weighting at its selected learning rate, per task and for the "
        "task mean (top), and its difference from tuned equal weighting on the same seed (bottom): "
        "one dot per seed, a bar at the mean over the five seeds; dotted: the error of predicting "
        "the mean (top) and no difference (bottom).",
        "Ten scatter panels, five columns (t0, t1, t2, t3, task mean) and two rows, with the six "
        "methods on the horizontal axis and one coloured dot per seed. Top row: static weights have "
        "errors near 0.4 in every column, the lowest on t0, t1, t2 and the task mean; equal weighting and DWA have one seed near "
        "1.1 on t0 and the others between 0.6 and 0.75; RLW is highest everywhere, above 1 on t0. "
        "Bottom row: the differences of static weights lie below zero on every seed for t0, t1, "
        "t2 and the task mean; DWA's differences sit close to zero; RLW's lie above zero on every "
        "seed; uncertainty weighting's lie below zero on t0 and mostly above it on the three large "
        "tasks; GradNorm's lie on both sides of zero."),
    ("07_loss_weighting.ipynb", "42f261ee"): Figure(
        "ch7-fig-gradnorm-problem",
        "GradNorm's synthetic problem with four tasks of very different scales: relative task "
        "weights $T w_i / \\sum_j w_j$ per epoch under equal weighting, uncertainty weighting and "
        "GradNorm (seed 0, each at its selected learning rate, until early stopping).",
        "Three panels of relative weight on a log axis. Equal weighting is flat at 1. Uncertainty "
        "weighting raises the smallest-scale task t0 to about 4 within a few epochs and lowers the "
        "three other tasks together, to a few thousandths. GradNorm raises t0 smoothly to about 4 "
        "and lowers the others smoothly, the larger the task's scale the lower, to between about "
        "0.02 and 0.15."),
    ("07_loss_weighting.ipynb", "cb728b2d"): Figure(
        "ch7-fig-all-weights",
        "Task weights during training for all six weightings (seed 0, until early stopping), on "
        "one scale $T w_i / \\sum_j w_j$; weights below $10^{-4}$ are drawn at the bottom edge.",
        "Six panels of relative weight per epoch on a log axis: equal is flat; static fixes "
        "t0 high and the others orders of magnitude lower; uncertainty separates t0 from the "
        "rest; GradNorm moves smoothly, t0 up and the others down; DWA stays near 1; RLW jumps "
        "randomly around 1."),
    ("08_gradient_conflict.ipynb", "b85b5be7"): Figure(
        "ch8-fig-conflict-during-training",
        "Gradient conflict during training for task pairs of correlation 0.9, 0 and -0.9, and "
        "0.9 with task 2 scaled by 10: cosine between the task gradients (moving average), its "
        "distribution over training, and the ratio of their norms.",
        "Left: all cosines rise at first; the correlated pair stays positive, the others turn "
        "negative, and the scaled pair dips far below zero before recovering. Middle: "
        "histograms of the cosines, the correlated pair furthest right. Right: the norm ratio "
        "stays near 1 except for the scaled pair, near 10 and rising to about 100."),
    ("08_gradient_conflict.ipynb", "854724f8"): Figure(
        "ch8-fig-aggregator-directions",
        "The update direction $d$ of each aggregator (red, one panel per method) for the "
        "conflicting gradients $g_1 = (3, 1)$ and $g_2 = (-2, 2)$ (grey); the dashed blue line is "
        "the mean's direction, for comparison.",
        "Eight small panels, one per aggregator, each with two grey arrows, g1 pointing right and "
        "slightly up and g2 pointing up and left, and one red arrow for the aggregator's direction. "
        "All red arrows point upward between the two gradients. MGDA and CAGrad point the same way, "
        "CAGrad longer; PCGrad and UPGrad point the same way, PCGrad twice as long and the longest "
        "of all; Nash-MTL, IMTL-G and Aligned-MTL lie close to the bisector of the two gradients."),
    ("08_gradient_conflict.ipynb", "44c52005"): Figure(
        "ch8-fig-toy-landscape",
        "The two-objective toy problem: contours of $f_1$, $f_2$ and their sum over "
        "$(x_1, x_2)$; the white segment is the Pareto set.",
        "Three filled contour plots over x1 and x2 from -10 to 10. f1 has its valley at the "
        "lower right, f2 at the lower left, and the sum in the lower middle; a white "
        "horizontal segment near x2 = -8.4 marks the Pareto set."),
    ("08_gradient_conflict.ipynb", "083450f7"): Figure(
        "ch8-fig-toy-cagrad",
        "Trajectories of the CAGrad paper's four methods on the toy problem in the CAGrad setting "
        "(losses at scale 1, three starts, 100,000 Adam steps at learning rate $10^{-3}$); stars "
        "mark where the runs end, the black segment is the Pareto set.",
        "Four panels, one per method, each with three coloured paths. The mean's runs from the two "
        "upper starts stop in the valleys above the segment; only the run from the lower left "
        "reaches it. MGDA and PCGrad reach the segment from every start, at points that depend on "
        "the start. CAGrad's three runs all end at the middle of the segment."),
    ("08_gradient_conflict.ipynb", "81ace0c8"): Figure(
        "ch8-fig-toy-nash",
        "Trajectories of the eight aggregators in the Nash-MTL setting ($f_1$ scaled by 0.1, "
        "five starts, 35,000 Adam steps at learning rate $10^{-3}$); stars mark where the runs end.",
        "Eight panels with five paths each. The mean and CAGrad gather the runs that reach the "
        "segment at one point on its left part and leave others above it; MGDA ends mostly near "
        "the right end; PCGrad and UPGrad leave the run from the upper right above the segment; "
        "Nash-MTL and IMTL-G spread their end points along the segment."),
    ("09_evaluation.ipynb", "8a8e92f3"): Figure(
        "ch9-fig-delta-m",
        "$\\Delta_m$ against single-task baselines for every method on multi_digits, each method at "
        "its tuned learning rate: one dot per seed, the mean with a bar of plus and minus one "
        "standard deviation, and the band of equal weighting.",
        "A dot-and-bar chart with one row per method. All means lie left of zero, within a few "
        "points of it; most methods overlap the red band of equal weighting, while RLW lies "
        "clearly to the left."),
    ("10_task_relationships.ipynb", "ch10-12"): Figure(
        "ch10-fig-similarity",
        "Three views of the six tasks (three pairs a, b, c): the gradient cosine within and "
        "across pairs during training, the mean gradient cosine matrix, and the lookahead "
        "affinity matrix (row onto column).",
        "Left: the cosine of tasks in the same group rises to about 0.5 and stays there, while "
        "across groups it stays near zero. Middle and right: six-by-six matrices with strong "
        "blue cells only for the pairs a0-a1, b0-b1 and c0-c1, and faint values elsewhere."),
    ("11_mtl_transfer_meta.ipynb", "558a92ff"): Figure(
        "ch11-fig-sine-family",
        "Six tasks drawn from the sine family, each with its own amplitude $A$ and phase "
        "$\\phi$.",
        "Six sine curves over x from -5 to 5 with amplitudes from about 0.2 to 4.6 and "
        "different phases."),
    ("11_mtl_transfer_meta.ipynb", "c11a7e01"): Figure(
        "ch11-fig-pretraining-curves",
        "Validation error during pre-training, one line per seed at the learning rate chosen for it, "
        "up to where early stopping ended it, a dot at the kept (best) value: the pooled network's "
        "held-out error against the tasks' mean target, the multi-task network's held-out error "
        "averaged over its tasks (both per epoch), and Reptile's error on the meta-validation tasks "
        "after 5 SGD steps on 10 of their examples (every 250 outer steps).",
        "Three log-scale line plots with five coloured lines each. The pooled and multi-task curves "
        "fall steeply in the first few hundred epochs and then flatten, each line ending where early "
        "stopping ended its run, between about 600 and 5000 epochs (cap 10000). Reptile's curves fall "
        "noisily over the first several thousand outer steps and then scatter around a level between "
        "about 0.1 and 0.3; each ends where early stopping ended its run, between about 8000 and "
        "19000 outer steps (cap 30000)."),
    ("11_mtl_transfer_meta.ipynb", "da8831e3"): Figure(
        "ch11-fig-few-shot",
        "Test error on new tasks against the number $K$ of their examples, for the random, "
        "pooled, multi-task and Reptile networks, adapted by a ridge head on the frozen hidden "
        "representation (left) or by fine-tuning every weight (right); mean and standard "
        "deviation over 5 seeds; dashed: predicting 0.",
        "Two log-log plots of test MSE against K = 2, 5, 10, 20. Left, ridge head: every network "
        "starts above or near the predict-0 line at K = 2 and falls, steeply from 10 to 20 "
        "examples, the multi-task network lowest at K = 20. Right, fine-tuning: Reptile is far "
        "below the other networks at every K and falls steadily, to about 0.04 at K = 20; the "
        "random network improves least."),
    ("11_mtl_transfer_meta.ipynb", "543647e2"): Figure(
        "ch11-fig-five-examples",
        "One new task learned from 5 examples by each network (first seed), with a ridge head "
        "(left) and by fine-tuning (right).",
        "Two panels, each with the new task's sine curve in black and its five example points, "
        "and four fitted curves, one per network. Left, ridge heads: the curves pass near the "
        "points but swing away between them. Right, fine-tuning: the random network's curve is "
        "almost a straight line, while the other networks follow the sine's shape with "
        "different errors."),
    ("12_applications.ipynb", "cdef3b78"): Figure(
        "ch12-fig-dense-seeds",
        "The test scores of the single-task and the multi-task networks on ten seeds, a line "
        "joining the two networks of each seed, and each seed's $\\Delta_m$ of the multi-task "
        "network against the single-task ones.",
        "Four small panels, one per metric (mean IoU, pixel accuracy, abs-rel, RMSE), each with "
        "ten coloured lines from the single-task to the multi-task score of one seed; in the "
        "pixel-accuracy panel most lines fall from single-task to multi-task, in the other "
        "three the lines slope both ways. A fifth panel has one bar per seed for Delta_m, positive for some seeds "
        "and negative for others."),
    ("12_applications.ipynb", "c12a7e01"): Figure(
        "ch12-fig-dense-curves",
        "Validation loss after every epoch of the multi-task network and of the single-task "
        "network of each task (segmentation left, depth right), ten seeds each; a dot marks the "
        "epoch whose weights early stopping kept.",
        "Two log-scale line plots over up to about 95 epochs, blue lines for the multi-task network "
        "and orange for the single-task one. Every line falls steeply over the first 10 to 20 epochs "
        "and then flattens; in the segmentation panel the blue lines fall more slowly and stay above "
        "most orange ones. Every line ends three epochs after its dot, between about epoch 20 and 95."),
    ("12_applications.ipynb", "6b51fbbe"): Figure(
        "ch12-fig-dense-prediction",
        "Three test scenes and the networks of the first seed: the input, the true classes, the "
        "classes predicted by the multi-task and the single-task network (colours in the class "
        "legend), the true depth and the multi-task depth (colour bar).",
        "Three rows of six small images. Each input is a noisy grey picture with one to three "
        "bright shapes; the true class maps show each shape in its class colour (background, disc, "
        "square, triangle, as in the legend below); both predicted class maps find the shapes but "
        "label parts of some of them with the wrong class; the predicted depth is a blurred version "
        "of the true depth, with a colour bar from near to far."),
}


def _has_image(cell) -> bool:
    return any("image/png" in output.get("data", {}) or "image/svg+xml" in output.get("data", {})
               for output in cell.get("outputs", []))


def problems(paths: list[Path]) -> list[str]:
    """Figures without an entry, entries without a figure, and metadata out of date."""
    import nbformat

    found = []
    messages = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type != "code" or not _has_image(cell):
                continue
            key = (path.name, cell.get("id"))
            found.append(key)
            if key not in FIGURES:
                messages.append(f"{path.name}: cell {cell.get('id')} draws a figure with no entry in FIGURES")
            elif cell.metadata.get("mystnb") != _metadata(FIGURES[key], cell.metadata.get("mystnb")):
                messages.append(f"{path.name}: cell {cell.get('id')}: caption metadata out of date "
                                "(run python -m mtl_course.tools.figure_captions)")
    names = {path.name for path in paths}
    for key in FIGURES:
        if key[0] in names and key not in found:
            messages.append(f"{key[0]}: no figure in cell {key[1]} any more; update FIGURES")
    labels = [figure.name for figure in FIGURES.values()]
    messages += [f"figure name {n!r} used twice" for n in sorted({n for n in labels if labels.count(n) > 1})]
    return messages


def _metadata(figure: Figure, current: dict | None) -> dict:
    metadata = dict(current or {})
    metadata["figure"] = {"caption": figure.caption, "name": figure.name}
    metadata["image"] = {"alt": figure.alt}
    return metadata


def apply(paths: list[Path]) -> int:
    """Write the metadata of every known figure into ``paths``; return the cells changed."""
    import nbformat

    changed = 0
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        dirty = False
        for cell in notebook.cells:
            key = (path.name, cell.get("id"))
            if cell.cell_type == "code" and key in FIGURES and _has_image(cell):
                wanted = _metadata(FIGURES[key], cell.metadata.get("mystnb"))
                if cell.metadata.get("mystnb") != wanted:
                    cell.metadata["mystnb"] = wanted
                    dirty = True
                    changed += 1
        if dirty:
            nbformat.write(notebook, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to update (default: every chapter in book/)")
    parser.add_argument("--book-dir", type=Path, default=Path("book"))
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a figure lacks its caption or alt text")
    args = parser.parse_args(argv)
    paths = args.notebooks or chapter_paths(args.book_dir)
    if not args.check:
        print(f"{apply(paths)} figure cells updated")
    messages = problems(paths)
    for message in messages:
        print(message, file=sys.stderr)
    return 1 if messages else 0


if __name__ == "__main__":
    raise SystemExit(main())
