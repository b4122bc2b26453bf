"""Data-parallel multi-task training (chapter 13): torch.distributed with gloo, and MirroredStrategy.

The distributed runs are real: two CPU processes on 127.0.0.1 for PyTorch (a
gloo timeout makes a stuck collective fail instead of hanging), two logical
CPU devices in a subprocess (with a timeout) for TensorFlow.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from mtl_course.core.aggregation import mean_weights, mgda_weights
from mtl_course.core.data_parallel import (
    DistributedConfig,
    aggregate_then_average,
    average_then_aggregate,
    global_batches,
    shard,
)
from mtl_course.torch import distributed_train as dt

# Bitwise equality is what the replicas must show; against one process only the
# summation order differs (float32 rounding, a few ulps per step).
TOL = 1e-5


# ---------------------------------------------------------------- framework-free pieces


def test_global_batches_are_full_disjoint_within_an_epoch_and_seeded():
    batches = global_batches(n=10, global_batch=4, steps=5, seed=3)
    assert [len(b) for b in batches] == [4] * 5
    # 10 // 4 = 2 full batches per epoch, the remaining 2 rows are dropped
    assert len(set(batches[0]) | set(batches[1])) == 8
    again = global_batches(n=10, global_batch=4, steps=5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not np.array_equal(batches[0], global_batches(10, 4, 1, seed=4)[0])


def test_shards_are_contiguous_and_cover_the_batch():
    batch = np.arange(10, 16)
    assert shard(batch, 0, 2).tolist() == [10, 11, 12]
    assert shard(batch, 1, 2).tolist() == [13, 14, 15]
    assert np.array_equal(np.concatenate([shard(batch, r, 3) for r in range(3)]), batch)
    with pytest.raises(ValueError, match="equal shards"):
        shard(batch, 0, 4)
    with pytest.raises(ValueError, match="rank"):
        shard(batch, 2, 2)


@pytest.mark.parametrize("field, value", [("steps", 0), ("global_batch", 1000), ("lr", float("nan")),
                                          ("method", ""), ("seed", -1)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field if field != "global_batch" else "larger than n"):
        DistributedConfig(**{field: value})


def test_averaging_local_mgda_directions_is_not_mgda_of_the_averaged_jacobian():
    # Hand-computed: replica 1 has g1=(2,0), g2=(0,1): MGDA gives 0.2 g1 + 0.8 g2 = (0.4, 0.8);
    # replica 2 has g1=(0,1), g2=(1,0): MGDA gives (0.5, 0.5); their mean is (0.45, 0.65).
    # The averaged Jacobian has g1=(1, 0.5), g2=(0.5, 0.5), and g1.g2 = 0.75 > |g2|^2 = 0.5,
    # so its min-norm point is g2 itself: (0.5, 0.5).
    J1 = np.array([[2.0, 0.0], [0.0, 1.0]])
    J2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(aggregate_then_average([J1, J2], mgda_weights), [0.45, 0.65], atol=1e-12)
    np.testing.assert_allclose(average_then_aggregate([J1, J2], mgda_weights), [0.5, 0.5], atol=1e-12)


def test_the_order_does_not_matter_for_the_linear_mean():
    rng = np.random.default_rng(0)
    shards = [rng.standard_normal((3, 7)) for _ in range(4)]
    np.testing.assert_allclose(aggregate_then_average(shards, mean_weights),
                               average_then_aggregate(shards, mean_weights), atol=1e-12)


def test_jacobian_lists_are_checked():
    with pytest.raises(ValueError, match="empty"):
        average_then_aggregate([], mgda_weights)
    with pytest.raises(ValueError, match="NaN or inf"):
        aggregate_then_average([np.array([[np.nan, 1.0]])], mgda_weights)


# ---------------------------------------------------------------- PyTorch, two gloo processes


def test_torch_rejects_bad_input_before_starting_processes():
    with pytest.raises(ValueError, match="unknown method"):
        dt.launch(DistributedConfig(method="uncertainty"), nproc=2)
    with pytest.raises(ValueError, match="equal shards"):
        dt.launch(DistributedConfig(global_batch=33), nproc=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        dt.train(DistributedConfig(), rank=0, world_size=2)


@pytest.mark.parametrize("method", ["equal", "mgda"])
def test_two_torch_replicas_agree_and_match_one_process(method, tmp_path):
    config = DistributedConfig(method=method, steps=8, global_batch=16, lr=0.1)
    replicas = dt.launch(config, nproc=2, out_dir=tmp_path, timeout_s=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0.npz", "rank1.npz"]
    # (a) every replica ends with bit-identical weights
    for name in replicas[0]:
        assert np.array_equal(replicas[0][name], replicas[1][name]), name
    # (b) ... equal to one process trained on the same global batches
    torch.set_num_threads(1)
    single = dt.weights_of(dt.train(config))
    assert dt.max_difference(replicas[0], single) < TOL
    # and training moved the weights far more than that tolerance
    initial = dt.weights_of(dt.build_model(config))
    assert dt.max_difference(single, initial) > 1e3 * TOL


@pytest.mark.parametrize("gpus, local_world_size, world_size, expected", [
    (4, "4", 8, "nccl"),   # 2 machines x 4 GPUs: each process has a GPU of its own
    (4, "8", 8, "gloo"),   # 8 processes on a 4-GPU machine: NCCL would put two ranks on one GPU
    (4, None, 4, "nccl"),  # this module's launcher: every process on this machine
    (2, None, 4, "gloo"),
    (0, "1", 1, "gloo"),
])
def test_backend_compares_the_gpus_with_the_processes_on_this_machine(monkeypatch, gpus, local_world_size,
                                                                        world_size, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(dt.dist, "is_nccl_available", lambda: True)
    if local_world_size is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_world_size)
    assert dt._backend(world_size) == expected


def test_the_command_line_reports_a_verdict_not_kernel_dependent_digits(tmp_path):
    command = [sys.executable, "-m", "mtl_course.torch.distributed_train", "--nproc", "2", "--method", "mgda",
               "--steps", "4", "--global-batch", "16", "--out", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[1:] == [
        "replicas identical: True",
        "replicas match the single process to float32 rounding (max difference < 1e-06): True"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0.npz", "rank1.npz"]  # no rendezvous or partial file


def test_single_process_training_is_deterministic():
    torch.set_num_threads(1)
    config = DistributedConfig(method="pcgrad", steps=4)
    first, second = (dt.weights_of(dt.train(config)) for _ in range(2))
    assert dt.max_difference(first, second) == 0.0


# ---------------------------------------------------------------- TensorFlow, MirroredStrategy


@pytest.mark.parametrize("method", ["equal", "mgda"])
def test_mirrored_strategy_matches_one_device(method, tmp_path):
    out = tmp_path / "weights.npz"
    result = subprocess.run(
        [sys.executable, "-m", "mtl_course.tf.distributed_train", "--replicas", "2", "--method", method,
         "--steps", "6", "--global-batch", "16", "--lr", "0.1", "--out", str(out)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on 2 logical CPUs" in result.stdout
    with np.load(out, allow_pickle=False) as f:
        assert bool(f["identical"])
        mirrored = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("mirrored/")}
        single = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("single/")}
    assert mirrored.keys() == single.keys() and len(single) == 6  # trunk and 2 heads, kernel + bias each
    for name in single:
        np.testing.assert_allclose(mirrored[name], single[name], atol=TOL, rtol=0)


# ---------------------------------------------------------------- the twins agree


@pytest.mark.parametrize("method", ["equal", "mgda"])
def test_torch_and_tf_single_device_training_agree_from_the_same_weights(method):
    import mtl_course.tf  # noqa: F401  (before tensorflow)
    from mtl_course.parity import copy_torch_to_tf
    from mtl_course.tf import distributed_train as tf_dt

    torch.set_num_threads(1)
    config = DistributedConfig(method=method, steps=6, global_batch=16, lr=0.1)
    torch_model = dt.build_model(config)
    keras_model = copy_torch_to_tf(torch_model, tf_dt.build_model(config))
    initial = tf_dt.weights_of(keras_model)
    dt.train(config, model=torch_model)
    tf_dt.train(config, model=keras_model)
    # compare in Keras' layout: copy the trained torch weights into a fresh Keras model
    expected = tf_dt.weights_of(copy_torch_to_tf(torch_model, tf_dt.build_model(config)))
    got = tf_dt.weights_of(keras_model)
    assert expected.keys() == got.keys()
    for name in got:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-5, rtol=0)
    assert max(float(np.max(np.abs(got[k] - initial[k]))) for k in got) > 1e-2  # it did train
