"""The chapters' experiment drivers, one module per chapter, named after it.

A driver runs one chapter's experiment end to end (data, models, training,
scores) by calling the library beneath it; nothing in the library imports a
driver. Drivers with a framework take the framework module first, ``mtl`` =
:mod:`mtl_course.torch` or :mod:`mtl_course.tf`, so a chapter runs the same
experiment in both frameworks by passing a different module::

    from mtl_course import torch as mtl
    from mtl_course.chapters import ch04_hard_sharing

    results = ch04_hard_sharing.separate_vs_hard(mtl, splits, ...)

The import rule (tested in ``tests/test_layout.py``): chapters -> torch / tf
-> core -> data, metrics, objective, classical, stats, checks.
"""
