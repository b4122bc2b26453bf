"""mtl_course.core.methods: one rule turns a method name into what fit trains with, for both twins."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mtl_course.core import methods
from mtl_course.core.tasks import Task


class FakeWeighting:
    def __init__(self, tasks=None, **kwargs):
        self.tasks, self.kwargs, self.bound = tasks, kwargs, None

    def bind(self, names):
        self.bound = names
        return self


class FakeUncertainty(FakeWeighting):
    def __init__(self, tasks, kinds="regression"):
        super().__init__(tasks, kinds=kinds)


class FakeRLW(FakeWeighting):
    def __init__(self, generator=None, tasks=None):
        super().__init__(tasks, generator=generator)


def draw_order(G, generator):
    return generator.permutation(len(G))


FAKES = {"equal": FakeWeighting, "uncertainty": FakeUncertainty, "rlw": FakeRLW, "dwa": FakeWeighting}
AGGREGATORS = {"mean": sum, "pcgrad": draw_order}
SPECS = {"a": Task("mse"), "b": Task("cross_entropy"), "c": Task("bce")}


def resolve(method, seed=0):
    return methods.resolve_method(method, SPECS, seed, FakeWeighting, FAKES, AGGREGATORS)


def test_names_build_each_weighting_with_what_it_needs():
    assert resolve("equal").tasks == ["a", "b", "c"]
    assert resolve("uncertainty").kwargs == {"kinds": ["regression", "classification", "classification"]}
    assert resolve("rlw", seed=7).kwargs == {"generator": 7}
    assert methods.build_weighting(FAKES, "dwa", ["a"], temperature=3.0).kwargs == {"temperature": 3.0}


def test_an_object_is_bound_and_a_function_is_used_as_given():
    own = FakeWeighting()
    assert resolve(own) is own and own.bound == ["a", "b", "c"]
    assert resolve(max) is max
    assert resolve("mean") is sum


def test_pcgrad_by_name_draws_from_a_generator_seeded_with_the_run_seed():
    first, second, other = resolve("pcgrad", 3), resolve("pcgrad", 3), resolve("pcgrad", 4)
    assert isinstance(first, functools.partial)
    G = np.zeros((20, 2))
    drawn = first(G)
    np.testing.assert_array_equal(drawn, second(G))
    np.testing.assert_array_equal(drawn, np.random.default_rng(3).permutation(20))
    assert not np.array_equal(drawn, other(G))


def test_unknown_names_and_non_methods_are_refused():
    with pytest.raises(ValueError, match="unknown method 'sgd'; weightings: .*aggregators: .*'pcgrad'"):
        resolve("sgd")
    with pytest.raises(TypeError, match="method must be a Weighting, a name or an aggregator function"):
        resolve(3)
    with pytest.raises(ValueError, match="unknown weighting 'nope'"):
        methods.build_weighting(FAKES, "nope", ["a"])


def test_the_names_are_each_twins_registries_in_order():
    torch_mtl = pytest.importorskip("mtl_course.torch")
    tf_mtl = pytest.importorskip("mtl_course.tf")
    for mtl in (torch_mtl, tf_mtl):
        assert tuple(mtl.WEIGHTINGS) == methods.WEIGHTING_NAMES
        assert tuple(mtl.AGGREGATORS) == methods.AGGREGATOR_NAMES
