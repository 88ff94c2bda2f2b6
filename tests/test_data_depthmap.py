"""Training data at per-voxel depth (curved samples): surface='auto' and depth_map= of DegradedRawData."""
import json

import numpy as np
import pytest

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import DegradedRawData, create_patches, load_settings, synthetic_spheroid, synthetic_tissue
from deepcontrast.degradation import slice_depths
from deepcontrast.depth import surface_depth

VS = (2.0, 0.5, 0.5)
DEG = DeepTissueDegradation(photons=50)


def degraded(raw_data):
    return [x for x, _, _, _ in raw_data.generator()]


@pytest.fixture(scope="module")
def spheroid():
    observed, _, depth = synthetic_spheroid((12, 64, 64), voxel_size=VS, rng=1)
    return observed, depth


def test_flat_map_gives_todays_pairs():
    img = synthetic_tissue((8, 48, 48), voxel_size=VS, rng=0)[0]
    flat = np.broadcast_to(slice_depths(8, voxel_size_z=VS[0], surface="last")[:, None, None], img.shape)
    today = DegradedRawData.from_arrays([img], "ZYX", DEG, (10, 40), n_degradations=2, voxel_size=VS, surface="last",
                                        rng=3)
    mapped = DegradedRawData.from_arrays([img], "ZYX", DEG, (10, 40), n_degradations=2, voxel_size=VS, surface="last",
                                         depth_map=[np.array(flat)], rng=3)
    for a, b in zip(degraded(today), degraded(mapped)):
        np.testing.assert_array_equal(a, b)
    X0, Y0, _ = create_patches(today, (4, 16, 16), 3, rng=1, verbose=False)
    X1, Y1, _ = create_patches(mapped, (4, 16, 16), 3, rng=1, verbose=False)
    np.testing.assert_array_equal(X0, X1)
    np.testing.assert_array_equal(Y0, Y1)
    assert today.settings["depth_map"] is None


def test_each_image_degraded_at_its_own_depths(spheroid, tmp_path):
    observed, _ = spheroid
    auto = DegradedRawData.from_arrays([observed, observed[:, ::-1]], "ZYX", DEG, 20.0, normalize_planes=False,
                                       voxel_size=VS,
                                       surface="auto", rng=4)
    maps = [surface_depth(im, "ZYX", voxel_size=VS) for im in (observed, observed[:, ::-1])]
    given = DegradedRawData.from_arrays([observed, observed[:, ::-1]], "ZYX", DEG, 20.0, normalize_planes=False,
                                        voxel_size=VS,
                                        depth_map=maps, rng=4)
    flat = DegradedRawData.from_arrays([observed, observed[:, ::-1]], "ZYX", DEG, 20.0, normalize_planes=False,
                                       voxel_size=VS, rng=4)
    a, g, f = degraded(auto), degraded(given), degraded(flat)
    for x, y in zip(a, g):
        np.testing.assert_array_equal(x, y)
    # the same noise draws: what differs from the flat surface is the depth of each voxel
    expect = DEG(observed, "ZYX", 20.0, depth=maps[0], voxel_size=VS, rng=np.random.default_rng(
        np.random.default_rng(4).integers(2**63)))
    assert not np.array_equal(a[0], f[0])
    assert expect.shape == a[0].shape and np.abs(expect - a[0]).max() < 1.0  # same model up to the noise draws
    X, Y, axes = create_patches(auto, (4, 16, 16), 2, save_file=tmp_path / "pairs.npz", rng=0, verbose=False)
    assert X.shape == (4, 1, 4, 16, 16)
    settings = load_settings(tmp_path / "pairs.npz")
    assert settings["surface"] == "auto"
    assert settings["depth_map"] == {"source": "surface_depth(surface='first') of each image", "surface": "first"}
    assert given.settings["depth_map"]["source"] == "given (depth_map=)"
    assert len(json.dumps(settings)) < 20000  # how the maps were made, never the arrays


def test_auto_calibration_with_depth_maps(spheroid):
    observed, depth = spheroid
    raw = DegradedRawData.from_arrays([observed], "ZYX", "auto", 20.0, voxel_size=VS, depth_map=depth, rng=0)
    assert raw.settings["calibration"]["inputs"]["depth_map"]["source"] == "given"
    assert raw.degradation.photons == pytest.approx(50, rel=0.2)


def test_depth_map_with_subvolumes():
    with pytest.raises(ValueError, match="sub-volumes"):
        DegradedRawData.from_arrays([np.ones((8, 32, 32))], "ZYX", DEG, 10.0, depth_map=np.zeros((8, 32, 32)),
                                    subvolume_size=(4, 16, 16))


def test_depth_map_with_a_depth():
    with pytest.raises(ValueError, match="leave depth at 0"):
        DegradedRawData.from_arrays([np.ones((8, 32, 32))], "ZYX", DEG, 10.0, surface="auto", depth=5.0)


def test_depth_map_list_of_wrong_length():
    with pytest.raises(ValueError, match="list of 2 maps for 1 images"):
        DegradedRawData.from_arrays([np.ones((8, 32, 32))], "ZYX", DEG, 10.0, depth_map=[np.zeros((8, 32, 32))] * 2)


def test_auto_and_depth_map_together():
    with pytest.raises(ValueError, match="either it or depth_map"):
        DegradedRawData.from_arrays([np.ones((8, 32, 32))], "ZYX", DEG, 10.0, surface="auto",
                                    depth_map=np.zeros((8, 32, 32)))


def test_bad_surface():
    with pytest.raises(ValueError, match="surface must be 'first' or 'last'"):
        DegradedRawData.from_arrays([np.ones((8, 32, 32))], "ZYX", DEG, 10.0, surface="top")
