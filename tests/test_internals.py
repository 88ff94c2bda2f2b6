"""Shared internals: axis moves, TIFF round trips keep axes and scale, JSON errors name the file."""
import logging

import numpy as np
import pytest
import tifffile

from deepcontrast.internals.axes import axes_last, to_planes
from deepcontrast.internals.files import read_json, write_json
from deepcontrast.internals.tiff import read_tiff, tiff_shape, write_tiff

SCALE = {"Z": 2.0, "Y": 0.5, "X": 0.25, "unit": "um"}


@pytest.mark.parametrize("shape,axes", [((3, 8, 8), "ZYX"), ((1, 8, 8), "ZYX"), ((8, 8), "YX")])
def test_tiff_round_trip_keeps_shape_and_scale(tmp_path, shape, axes):
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    write_tiff(tmp_path / "a.tif", img, axes=axes, scale=SCALE)
    back, scale = read_tiff(tmp_path / "a.tif", with_scale=True)
    np.testing.assert_array_equal(back, img)
    expected = {k: v for k, v in SCALE.items() if k in axes or k == "unit"}
    assert {k: scale[k] for k in expected if k != "unit"} == pytest.approx({k: v for k, v in expected.items() if k != "unit"})
    assert scale["unit"] == "um"
    assert tiff_shape(tmp_path / "a.tif", axes) == shape


def test_tiff_that_imagej_cannot_hold_keeps_axes_and_says_so(tmp_path, caplog):
    img = np.random.default_rng(0).random((3, 8, 8))  # float64: not an ImageJ type
    with caplog.at_level(logging.WARNING):
        write_tiff(tmp_path / "a.tif", img, axes="ZYX")
    assert "ImageJ" in caplog.text and "float64" in caplog.text
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.series[0].axes == "ZYX"


def test_tiff_shape_checks_axes(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="a.tif has 2 dimensions"):
        tiff_shape(tmp_path / "a.tif", "ZYX")


def test_json_round_trip_and_corrupt_file_named(tmp_path):
    write_json(tmp_path / "a.json", {"x": np.float32(1.5), "nan": float("nan"), "t": (1, 2)})
    assert read_json(tmp_path / "a.json") == {"x": 1.5, "nan": None, "t": [1, 2]}
    (tmp_path / "b.json").write_text('{"x": 1')
    with pytest.raises(ValueError, match="b.json is not valid JSON"):
        read_json(tmp_path / "b.json")


def test_axes_last_moves_named_axes_and_back():
    img = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # CYZX
    moved, order = axes_last(img, "CYZX", "YX", first="Z")
    assert order == "ZCYX" and moved.shape == (4, 2, 3, 5)
    assert moved[3, 1, 2, 4] == img[1, 2, 3, 4]
    back, axes = axes_last(moved, order, "CYZX")  # every axis named: a full reorder
    assert axes == "CYZX"
    np.testing.assert_array_equal(back, img)


def test_to_planes_and_restore_round_trip():
    img = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # YXZC: planes are the (Z, C) combinations
    planes, restore = to_planes(img, "YXZC", "YX")
    assert planes.shape == (20, 2, 3)
    np.testing.assert_array_equal(planes[3 * 5 + 4], img[:, :, 3, 4])
    np.testing.assert_array_equal(restore(planes * 2), img * 2)
