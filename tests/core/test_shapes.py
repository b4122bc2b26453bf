"""The generated shapes scenes of chapter 12 (mtl_course.data.shapes)."""

import numpy as np
import pytest

from mtl_course.data.shapes import CLASSES, _shape_mask, shapes_scenes


@pytest.fixture(scope="module")
def splits():
    return shapes_scenes(n_train=40, n_val=5, n_test=10, size=24, seed=3)


def test_shapes_dtypes_and_layout(splits):
    assert [len(s) for s in splits] == [40, 5, 10]
    train = splits.train
    assert train.x.shape == (40, 1, 24, 24) and train.x.dtype == np.float32
    assert train.task_names == ("segmentation", "depth")
    assert train.y["segmentation"].shape == (40, 24, 24) and train.y["segmentation"].dtype == np.int64
    assert train.y["depth"].shape == (40, 24, 24) and train.y["depth"].dtype == np.float32
    assert set(np.unique(train.y["segmentation"])) <= set(range(len(CLASSES)))


def test_shapes_depth_is_consistent_with_labels(splits):
    seg, depth = splits.train.y["segmentation"], splits.train.y["depth"]
    background = seg == 0
    # The ground plane: 4 at the top row, 3 at the bottom row, linear in between.
    rows = np.broadcast_to(np.linspace(4.0, 3.0, 24)[None, :, None], seg.shape)
    np.testing.assert_allclose(depth[background], rows[background], rtol=1e-6)
    assert depth[~background].min() >= 1.2 and depth[~background].max() <= 2.8
    # Every image has at least one visible shape.
    assert (seg.reshape(40, -1) > 0).any(axis=1).all()


def test_shapes_deterministic_and_seed_dependent():
    a = shapes_scenes(n_train=5, n_val=1, n_test=1, size=16, seed=1)
    b = shapes_scenes(n_train=5, n_val=1, n_test=1, size=16, seed=1)
    c = shapes_scenes(n_train=5, n_val=1, n_test=1, size=16, seed=2)
    for sa, sb in zip(a, b):
        assert np.array_equal(sa.x, sb.x)
        for k in sa.y:
            assert np.array_equal(sa.y[k], sb.y[k])
    assert not np.array_equal(a.train.x, c.train.x)


def test_apparent_size_follows_perspective():
    splits = shapes_scenes(n_train=200, n_val=1, n_test=1, size=16, max_shapes=3, noise=0.0, seed=0)
    depth = splits.train.y["depth"]
    # Images with one visible shape depth: its area grows like (focal / d)^2.
    seg = splits.train.y["segmentation"]
    single = [i for i in range(200) if len(np.unique(depth[i][seg[i] > 0])) == 1]
    d = np.array([depth[i][seg[i] > 0][0] for i in single])
    area = np.array([(seg[i] > 0).sum() for i in single])
    assert np.corrcoef(1 / d**2, area)[0, 1] > 0.8


def test_shape_masks_hand_checked():
    rows, cols = np.mgrid[0:7, 0:7].astype(float)
    disc = _shape_mask(1, rows, cols, 3.0, 3.0, 1.0)
    assert disc.sum() == 5  # the centre and its 4 neighbours
    square = _shape_mask(2, rows, cols, 3.0, 3.0, 2.0)  # half side 1.7: a 3x3 block
    assert square.sum() == 9
    triangle = _shape_mask(3, rows, cols, 3.0, 3.0, 2.0)
    # Rows 1..5 have half-widths 0, 0.5, 1, 1.5, 2: 1 + 1 + 3 + 3 + 5 pixels.
    assert triangle.sum() == 13 and triangle[1, 3] and not triangle[1, 2]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_train": 0}, "n_train"),
    ({"size": 8}, "size"),
    ({"max_shapes": 0}, "max_shapes"),
    ({"noise": -1.0}, "noise"),
    ({"noise": float("nan")}, "noise"),
    ({"focal": 20.0}, "focal"),
    ({"n_val": 2.5}, "n_val"),
])
def test_shapes_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes_scenes(**kwargs)
