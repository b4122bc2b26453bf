"""What every exercise checker shares: reading an answer, comparing it, printing feedback.

A checker receives whatever a reader typed: a Python number, a list, a numpy
array or scalar, a torch tensor (perhaps one that requires grad) or a
TensorFlow tensor, or the placeholder ``...`` that the chapter's exercise cell
shows before the reader answers. The readers here turn all of these into
plain numbers or float64 arrays, or into ``None`` when the answer has the
wrong form, so that each checker only compares.

One tolerance for every checker: an answer is right when it agrees with the
reference to the relative tolerance :data:`RTOL`; one that is only
:data:`CLOSE_RTOL` away gets "close: give more digits" instead of "wrong".

:func:`grade_function` grades a reader's *function*: it runs it on hidden
random inputs (a fixed seed, so every run sees the same cases) in numpy, torch
or TensorFlow and compares with the package's reference, reporting the first
input on which the two disagree, never the reference's output.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CLOSE_MESSAGE",
    "CLOSE_RTOL",
    "RTOL",
    "WIDTH",
    "as_array",
    "as_count",
    "as_index_set",
    "as_number",
    "as_vector",
    "closeness",
    "feedback",
    "grade_function",
    "is_placeholder",
    "matches",
    "not_answered",
    "paired_excludes_zero",
    "read_table",
    "wrong_components",
]

#: Relative tolerance of every checker: the answer must agree to about four significant digits.
RTOL = 1e-3
#: An answer this close (relative) but not within :data:`RTOL` is "close: give more digits".
CLOSE_RTOL = 5e-2
#: Feedback is wrapped to this many columns, so that it fits the book's column and a notebook.
WIDTH = 88

_PREFIX = {True: "Correct: ", False: "Not yet: ", None: "Not answered yet: "}


def feedback(correct: bool | None, message: str) -> bool:
    """Print ``message`` after ``Correct:``, ``Not yet:`` (or ``Not answered yet:`` for
    ``correct=None``), wrapped at :data:`WIDTH` columns; return ``bool(correct)``."""
    text = _PREFIX[correct] + " ".join(message.split())
    print(textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False))
    return bool(correct)


def is_placeholder(value: object) -> bool:
    """Whether ``value`` is the exercise cell's placeholder ``...`` (``Ellipsis``)."""
    return value is Ellipsis


def not_answered(what: str = "the `...`", message: str | None = None) -> bool:
    """The response to a placeholder: a friendly reminder, never an error."""
    return feedback(None, message or f"replace {what} with your answer and run the cell again.")


def _from_framework(value: object) -> object:
    """A torch or TensorFlow tensor as a numpy array (detached, on the CPU); anything else unchanged."""
    module = type(value).__module__
    if module.startswith("torch"):
        detach = getattr(value, "detach", None)
        if detach is not None:
            return detach().cpu().numpy()
    if module.startswith("tensorflow") or module.startswith("keras"):
        to_numpy = getattr(value, "numpy", None)
        if to_numpy is not None:
            return to_numpy()
    return value


def as_array(value: object) -> np.ndarray | None:
    """``value`` as a float64 array of finite numbers, or None.

    Accepts Python numbers, nested lists and tuples (of numbers or of 0-d
    tensors), numpy arrays and scalars, torch tensors (also ones that require
    grad, or live on a GPU) and TensorFlow tensors. Text, booleans, ``None``
    and non-finite values give None.
    """
    if value is None or isinstance(value, (str, bytes, bool, np.bool_, dict)) or is_placeholder(value):
        return None
    value = _from_framework(value)
    if isinstance(value, (list, tuple)):
        items = [as_array(v) for v in value]
        if any(item is None for item in items):
            return None
        try:
            array = np.array(items, dtype=np.float64)
        except ValueError:  # ragged
            return None
    else:
        try:
            raw = np.asarray(value)
        except (TypeError, ValueError):
            return None
        if raw.dtype == np.bool_ or raw.dtype.kind not in "iuf":
            return None
        array = raw.astype(np.float64)
    if not np.all(np.isfinite(array)):
        return None
    return array


def as_number(value: object) -> float | None:
    """``value`` as one finite float (also a 0-d or one-element array or tensor), or None."""
    array = as_array(value)
    if array is None or array.size != 1:
        return None
    return float(array.reshape(()))


def as_count(value: object) -> int | None:
    """``value`` as a whole number; integer-valued floats (``1001.0``, ``np.float64(56)``) count."""
    number = as_number(value)
    if number is None or number != math.floor(number):
        return None
    return int(number)


def as_vector(value: object, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as a float64 array of ``shape`` (a 1 x n or n x 1 array is accepted for ``(n,)``)."""
    array = as_array(value)
    if array is None:
        return None
    if array.shape != shape and array.size == math.prod(shape) and len(shape) == 1:
        array = array.reshape(shape)
    return array if array.shape == shape else None


def as_index_set(value: object, size: int) -> tuple[set[int] | None, str]:
    """An answer naming some of ``size`` items: a list of indices or a boolean mask of length ``size``.

    Returns the set of indices and ``""``, or None and a message saying what
    is wrong (not indices, out of range, repeated).
    """
    if is_placeholder(value) or value is None or isinstance(value, (str, bytes, dict)):
        return None, f"give a list of indices (integers 0 to {size - 1}) or a boolean mask of length {size}"
    value = _from_framework(value)
    try:
        array = np.asarray(list(value) if isinstance(value, (set, frozenset)) else value)
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 1:
        return None, f"give a list of indices (integers 0 to {size - 1}) or a boolean mask of length {size}"
    if array.dtype == np.bool_:
        if len(array) != size:
            return None, f"a boolean mask needs one entry per item ({size}), got {len(array)}"
        return set(np.flatnonzero(array).tolist()), ""
    if array.size == 0:
        return set(), ""
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.floor(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        return None, f"indices should be whole numbers 0 to {size - 1}"
    indices = [int(i) for i in array]
    outside = sorted({i for i in indices if not 0 <= i < size})
    if outside:
        return None, f"indices outside 0..{size - 1}: {outside}"
    repeated = sorted({i for i in indices if indices.count(i) > 1})
    if repeated:
        return None, f"each index should appear once; repeated: {repeated}"
    return set(indices), ""


def _scale(expected: np.ndarray) -> float:
    return float(np.max(np.abs(expected))) if expected.size else 0.0


def wrong_components(value: np.ndarray, expected: np.ndarray, rtol: float = RTOL) -> list[int]:
    """Flat indices of the components of ``value`` more than ``rtol`` (relative to the larger
    of the component and the array's largest entry) away from ``expected``."""
    value, expected = np.asarray(value, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = np.maximum(np.abs(expected), _scale(expected))
    bad = np.abs(value - expected) > rtol * scale + 1e-12
    return [int(i) for i in np.flatnonzero(bad.reshape(-1))]


def closeness(value: object, expected: object, rtol: float = RTOL, close_rtol: float = CLOSE_RTOL) -> str:
    """``"right"``, ``"close"`` (within ``close_rtol``, not ``rtol``: too few digits) or ``"wrong"``.

    Each component is compared relative to the larger of itself and the
    largest entry of ``expected``, so a near-zero component is not held to
    more digits than the others.
    """
    a, b = np.asarray(value, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return "wrong"
    if not wrong_components(a, b, rtol):
        return "right"
    return "close" if not wrong_components(a, b, close_rtol) else "wrong"


def matches(value: object, expected: object, rtol: float = RTOL) -> bool:
    """Whether ``value`` equals ``expected`` within :data:`RTOL` (used to recognise a typical mistake)."""
    return closeness(value, expected, rtol) == "right"


CLOSE_MESSAGE = "Close, but not within 0.1 %: give more digits (four significant digits, or the exact fraction)."


# ---------------------------------------------------------------- graded functions


def _to_framework(array: np.ndarray, framework: str) -> Any:
    """A hidden input as the reader's framework sees it: float arrays as float64 numpy or float32
    tensors, integer arrays (label maps) keep an integer dtype. Always a fresh copy."""
    array = np.array(array)
    is_float = array.dtype.kind == "f"
    if framework == "numpy":
        return array.astype(np.float64) if is_float else array
    if framework == "torch":
        import torch

        return torch.tensor(array, dtype=torch.float32 if is_float else torch.int64)
    if framework == "tf":
        import tensorflow as tf

        import mtl_course.tf  # noqa: F401  (before tensorflow: it silences TensorFlow's start-up logs)

        return tf.constant(array, dtype=tf.float32 if is_float else tf.int64)
    raise ValueError(f"framework must be 'numpy', 'torch' or 'tf', got {framework!r}")


def _convert_inputs(case: Sequence[Any], framework: str) -> list[Any]:
    """Numpy arrays, and lists or dicts of them, as the framework's arrays; other values unchanged."""
    converted = []
    for item in case:
        if isinstance(item, np.ndarray):
            converted.append(_to_framework(item, framework))
        elif isinstance(item, list) and item and all(isinstance(x, np.ndarray) for x in item):
            converted.append([_to_framework(x, framework) for x in item])
        elif isinstance(item, dict) and item and all(isinstance(x, np.ndarray) for x in item.values()):
            converted.append({k: _to_framework(x, framework) for k, x in item.items()})
        else:
            converted.append(item)
    return converted


#: Hidden inputs with more entries than this are described by their shape, so feedback stays short.
SHOW_ENTRIES = 16


def _show(item: object) -> str:
    if isinstance(item, np.ndarray):
        if item.size > SHOW_ENTRIES:
            return f"<{item.dtype.kind == 'f' and 'float' or 'integer'} array of shape {item.shape}>"
        return np.array2string(item, separator=", ", formatter={"float_kind": lambda x: f"{x:.4g}"})
    if isinstance(item, dict):
        return "{" + ", ".join(f"{k!r}: {v:.4g}" if isinstance(v, float) else f"{k!r}: {_show(v)}"
                               for k, v in item.items()) + "}"
    if isinstance(item, list) and item and all(isinstance(x, np.ndarray) for x in item):
        return "[" + ", ".join(_show(x) for x in item) + "]"
    return repr(item)


def _bool_as_float(output: object) -> object:
    """A boolean mask (numpy, torch, TensorFlow or a list) as 0.0 / 1.0, so masks compare like numbers."""
    raw = _from_framework(output)
    if isinstance(raw, (list, tuple)) and raw and all(isinstance(v, (bool, np.bool_)) for v in raw):
        return np.asarray(raw, dtype=np.float64)
    if isinstance(raw, np.ndarray) and raw.dtype == np.bool_:
        return raw.astype(np.float64)
    return raw


def describe_case(names: Sequence[str], case: Sequence[Any]) -> str:
    """The hidden input as ``name = value`` pairs, for the feedback."""
    return "; ".join(f"{name} = {_show(value)}" for name, value in zip(names, case))


def grade_function(
    fn: object,
    reference: Callable[..., Any],
    cases: Iterable[Sequence[Any]],
    names: Sequence[str],
    *,
    framework: str = "numpy",
    what: str = "your function",
    mistakes: Sequence[tuple[Callable[..., Any], str]] = (),
    success: str = "",
    rtol: float = RTOL,
) -> bool:
    """Run a reader's function ``fn`` on hidden inputs and compare it with ``reference``.

    Args:
        fn: the reader's function; ``...`` (or a function that raises
            ``NotImplementedError``) is "not answered yet".
        reference: the package's implementation, called with the same inputs as
            float64 numpy arrays.
        cases: the inputs, one tuple of positional arguments per case (numpy
            arrays, lists of arrays, or plain Python values passed unchanged).
        names: the argument names, to describe a failing input.
        framework: ``"numpy"``, ``"torch"`` or ``"tf"``: the type of array ``fn``
            receives (float32 tensors for torch and TensorFlow).
        mistakes: ``(wrong_reference, hint)`` pairs: when the reader's output on
            the failing case equals ``wrong_reference``'s, the hint names the mistake.
        success: what to say when every case passes.

    Prints one message and returns whether every case passed.
    """
    if is_placeholder(fn) or fn is None:
        return not_answered(message=f"write {what} and pass it to the checker in place of `...`.")
    if not callable(fn):
        return feedback(False, f"pass {what} itself (a function), got {fn!r}.")
    cases = list(cases)
    for number, case in enumerate(cases, start=1):
        inputs = _convert_inputs(case, framework)
        try:
            output = fn(*inputs)
        except NotImplementedError:
            return not_answered(message=f"write the body of {what} (in place of `raise NotImplementedError`) "
                                        "and run the cell again.")
        except Exception as error:  # the reader's code: report, do not crash
            return feedback(False, f"{what} raised {type(error).__name__}: {error} on hidden case {number}: "
                                   f"{describe_case(names, case)}.")
        expected = np.asarray(reference(*case), dtype=np.float64)
        got = as_array(_bool_as_float(output))
        if got is None:
            return feedback(False, f"{what} should return {expected.size} finite number"
                                   f"{'s' if expected.size != 1 else ''} (an array or tensor of shape "
                                   f"{tuple(expected.shape)}), got {type(output).__name__} on hidden case "
                                   f"{number}: {describe_case(names, case)}.")
        if got.shape != expected.shape:
            if got.size == expected.size:
                got = got.reshape(expected.shape)
            else:
                return feedback(False, f"{what} returned shape {tuple(got.shape)}, expected "
                                       f"{tuple(expected.shape)}, on hidden case {number}: "
                                       f"{describe_case(names, case)}.")
        if closeness(got, expected, rtol) == "right":
            continue
        wrong = wrong_components(got, expected, rtol)
        where = (f"entr{'y' if len(wrong) == 1 else 'ies'} {wrong[:6]}{' ...' if len(wrong) > 6 else ''} "
                 f"{'(flat index) ' if expected.ndim > 1 else ''}of the output" if expected.size > 1 else "the output")
        hint = ""
        for wrong_reference, message in mistakes:
            try:
                candidate = np.asarray(wrong_reference(*case), dtype=np.float64)
            except Exception:  # a mistake model may not apply to every case
                continue
            if candidate.shape == expected.shape and closeness(got, candidate, 10 * rtol) == "right":
                hint = " " + message
                break
        return feedback(False, f"{where} {'is' if expected.size == 1 or len(wrong) == 1 else 'are'} off on "
                               f"hidden case {number} of {len(cases)} ({framework}): "
                               f"{describe_case(names, case)}.{hint}")
    return feedback(True, success or f"{what} agrees with the package on all {len(cases)} hidden cases "
                                      f"({framework}).")


# ---------------------------------------------------------------- sweep tables


def read_table(table: object, keys: Sequence[float], min_seeds: int) -> tuple[dict[float, np.ndarray] | None, str]:
    """A sweep's table: a dict from each setting in ``keys`` to its per-seed values (the same
    number of seeds, at least ``min_seeds``, for every setting). Returns the table with float keys
    and float64 rows, or None and what is wrong."""
    if not isinstance(table, dict):
        return None, f"give a dict from each of {list(keys)} to its list of per-seed values"
    read: dict[float, np.ndarray] = {}
    for key, values in table.items():
        number = as_number(key)
        row = as_array(values)
        if number is None or row is None or row.ndim != 1:
            return None, f"the entry {key!r} should map a setting to a list of per-seed numbers"
        read[number] = row
    missing = [k for k in keys if not any(math.isclose(k, r, abs_tol=1e-9) for r in read)]
    if missing:
        return None, f"no row for {missing}"
    rows = {k: next(v for r, v in read.items() if math.isclose(k, r, abs_tol=1e-9)) for k in keys}
    sizes = {len(v) for v in rows.values()}
    if len(sizes) != 1:
        return None, "every setting needs the same seeds (one value per seed, in the same order)"
    if sizes.pop() < min_seeds:
        return None, f"give at least {min_seeds} seeds per setting"
    return rows, ""


def paired_excludes_zero(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> bool:
    """Whether the paired t interval of ``a - b`` (seed by seed) excludes zero."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if np.all(d == d[0]):
        return bool(d[0] != 0)
    half = stats.t.ppf((1 + confidence) / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return bool(abs(d.mean()) > half)
