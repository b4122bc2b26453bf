"""What a GPU reader relies on, tested without a GPU where it can be (and on one, `cuda`-marked, where not).

No GPU is lent to this project, so the device handling is made right by
construction and checked here: a static check that the chapter drivers create
every tensor on their model's or data's device and copy to the host before
``.numpy()``; dtypes and devices that public functions keep; the settings a
GPU run depends on (TF32 off, TensorFlow's memory growth); and the GPU paths
themselves in tests that run where CUDA is present.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_course.torch import aggregators as agg
from mtl_course.torch.dense import dense_prediction_model, segmentation_loss
from mtl_course.torch.gradients import jacobian

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = sorted((ROOT / "mtl_course" / "chapters").glob("*.py"))
FACTORIES = {"tensor", "as_tensor", "zeros", "ones", "randn", "rand", "randint", "arange", "full", "empty",
             "eye", "linspace", "from_numpy"}


def device_mistakes(source: str) -> list[str]:
    """Calls in ``source`` that would put a tensor on the CPU behind a GPU model's back.

    ``torch.<factory>(...)`` without ``device=`` (``torch.from_numpy`` has none: use
    ``torch.as_tensor(..., device=...)``), and ``<tensor>.numpy()`` not directly on ``.cpu()``.
    """
    mistakes = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        func = node.func
        if (isinstance(func.value, ast.Name) and func.value.id == "torch" and func.attr in FACTORIES
                and not any(k.arg == "device" for k in node.keywords)):
            mistakes.append(f"line {node.lineno}: torch.{func.attr}(...) without device=")
        if func.attr == "numpy" and not (isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Attribute)
                                         and func.value.func.attr == "cpu"):
            mistakes.append(f"line {node.lineno}: .numpy() without .cpu() before it")
    return mistakes


def test_the_static_check_finds_the_mistakes_it_names():
    bad = ("x = torch.as_tensor(a)\ny = torch.zeros(3)\nz = torch.from_numpy(a)\n"
           "g = (J @ J.T).numpy()\nh = J.double().numpy()\n")
    assert len(device_mistakes(bad)) == 5
    good = ("x = torch.as_tensor(a, device=model_device)\ng = (J @ J.T).cpu().numpy()\n"
            "y = torch.zeros(3, device=x.device)\nn = np.asarray(tf_variable)\n")
    assert device_mistakes(good) == []


@pytest.mark.parametrize("path", DRIVERS, ids=lambda p: p.name)
def test_drivers_create_tensors_on_their_models_device(path):
    mistakes = device_mistakes(path.read_text())
    assert not mistakes, f"{path.name}: " + "; ".join(mistakes)


# ----------------------------------------------------------------- dtype and device in, dtype and device out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(agg.AGGREGATORS))
def test_aggregators_return_on_the_jacobians_dtype_and_device(name, dtype):
    J = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 1.0, 3.0]], dtype=dtype)
    d = agg.AGGREGATORS[name](J)
    assert d.dtype == dtype and d.device == J.device and d.shape == (3,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_jacobian_and_segmentation_loss_keep_dtype_and_device(dtype):
    w = torch.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    J = jacobian([(w ** 2).sum(), w.sum()], [w])
    assert J.dtype == dtype and J.device == w.device
    torch.testing.assert_close(J, torch.tensor([[2.0, 4.0], [1.0, 1.0]], dtype=dtype))
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
    target = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    loss = segmentation_loss(logits, target)
    assert loss.dtype == dtype and loss.device == logits.device
    by_hand = -torch.log_softmax(logits, dim=1).gather(1, target[:, None]).mean()
    torch.testing.assert_close(loss, by_hand)


def test_segmentation_loss_gpu_formula_equals_the_cpu_one():
    """The GPU path (per-pixel losses, then a plain mean) is the same number as nll_loss2d's mean."""
    logits = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    target = torch.randint(0, 4, (3, 8, 8), generator=torch.Generator().manual_seed(3))
    per_pixel = torch.nn.functional.cross_entropy(logits, target, reduction="none").mean()
    torch.testing.assert_close(segmentation_loss(logits, target), per_pixel, rtol=1e-12, atol=0)


# ----------------------------------------------------------------- settings a GPU run depends on


def test_torch_seed_everything_turns_tf32_off():
    from mtl_course.torch import seed_everything

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # cuDNN's default is True
    try:
        seed_everything(0)
        assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cuda.matmul.allow_tf32 is False
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_tensorflow_side_grows_gpu_memory_and_turns_tf32_off():
    code = ("import os\n"
            "os.environ.pop('TF_FORCE_GPU_ALLOW_GROWTH', None)\n"
            "from mtl_course import tf as mtl\n"
            "import tensorflow as tf\n"
            "print(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])\n"
            "print(tf.config.experimental.tensor_float_32_execution_enabled())\n"
            "mtl.seed_everything(0)\n"
            "print(tf.config.experimental.tensor_float_32_execution_enabled())\n")
    run = _python(code)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["true", "True", "False"]


def test_a_users_memory_setting_is_kept():
    run = _python("from mtl_course import tf\nimport os\nprint(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])",
                  env={"TF_FORCE_GPU_ALLOW_GROWTH": "false"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "false"


# ----------------------------------------------------------------- on a GPU


@pytest.mark.cuda
def test_conflict_driver_runs_on_the_models_device():
    from mtl_course.chapters.ch08_conflict import conflict_during_training
    from mtl_course.data.types import MultiTaskSplit
    from mtl_course.torch.models import HardSharing, mlp

    rng = np.random.default_rng(0)
    data = MultiTaskSplit(rng.standard_normal((64, 4)).astype(np.float32),
                          {"a": rng.standard_normal(64).astype(np.float32),
                           "b": rng.standard_normal(64).astype(np.float32)})

    def trace(device):
        torch.manual_seed(0)
        model = HardSharing(mlp([4, 8], output_activation=True), {"a": mlp([8, 1]), "b": mlp([8, 1])}).to(device)
        return conflict_during_training(model, data, epochs=1, batch_size=16), model

    on_gpu, model = trace("cuda")
    assert next(model.parameters()).is_cuda and isinstance(on_gpu.cosines, np.ndarray)
    on_cpu, _ = trace("cpu")
    np.testing.assert_allclose(on_gpu.cosines, on_cpu.cosines, atol=1e-4)


@pytest.mark.cuda
def test_segmentation_loss_is_deterministic_on_cuda():
    from mtl_course.torch import seed_everything

    seed_everything(0)
    torch.use_deterministic_algorithms(True)  # an op without a deterministic kernel now raises
    try:
        model = dense_prediction_model(1, 3, width=4).cuda()
        x = torch.randn(2, 1, 8, 8, device="cuda")
        target = torch.randint(0, 3, (2, 8, 8), device="cuda")
        loss = segmentation_loss(model(x)["segmentation"], target)
        loss.backward()
        assert loss.device.type == "cuda" and torch.isfinite(loss)
    finally:
        torch.use_deterministic_algorithms(True, warn_only=True)
