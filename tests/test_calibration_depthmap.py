"""Calibration against per-voxel depth (curved samples): known answers on synthetic_spheroid,
and a flat map gives exactly today's calibration."""
import json

import numpy as np
import pytest

from deepcontrast import DeepTissueDegradation
from deepcontrast.calibration import calibrate
from deepcontrast.data import synthetic_spheroid, synthetic_tissue
from deepcontrast.degradation import slice_depths

VS = (2.0, 0.5, 0.5)
#: truth away from the defaults (150 um, 0.03), so that keeping a default is not a pass
TRUTH = DeepTissueDegradation(photons=50, attenuation_length=60.0, blur_rate=0.05)
BLUR_STEP = 0.01  # the calibration's blur_rate grid step


@pytest.fixture(scope="module")
def spheroid():
    return synthetic_spheroid(degradation=TRUTH, rng=3)


def test_flat_map_gives_todays_calibration():
    observed, _ = synthetic_tissue((12, 64, 64), voxel_size=VS, rng=2)
    flat = np.broadcast_to(slice_depths(12, depth=5.0, voxel_size_z=VS[0])[:, None, None], observed.shape)
    deg, report = calibrate(observed, "ZYX", voxel_size=VS, depth=5.0)
    deg_map, report_map = calibrate(observed, "ZYX", voxel_size=VS, depth=np.array(flat))
    assert deg_map == deg
    assert json.dumps(report_map.parameters, sort_keys=True, default=str) == \
        json.dumps(report.parameters, sort_keys=True, default=str)
    assert report_map.inputs["depth_map"] == {"source": "given", "flat": True, "range": [5.0, 27.0]}


def test_spheroid_with_its_depth_map_recovers_attenuation_and_blur(spheroid):
    observed, _, depth = spheroid
    deg, report = calibrate(observed, "ZYX", voxel_size=VS, depth=depth)
    # measured on seeds 0-5: attenuation 50, 54, 69, 60, 74, 61 um (seed 3: 60; the sample's own
    # structure density varies with depth by up to 0.3% per um: with it divided out 61-65 um in 6/6),
    # blur_rate 0.04 in 6/6
    assert deg.attenuation_length == pytest.approx(TRUTH.attenuation_length, rel=0.15)
    assert abs(deg.blur_rate - TRUTH.blur_rate) <= BLUR_STEP + 1e-9
    assert report.parameters["attenuation_length"]["estimated"]
    assert deg.photons == pytest.approx(50, rel=0.1)  # the black medium does not hide the shot noise
    # a flat surface does not: its first slices are black medium (it keeps the defaults, 150 um and 0.03)
    flat, _ = calibrate(observed, "ZYX", voxel_size=VS)
    assert flat.attenuation_length != pytest.approx(TRUTH.attenuation_length, rel=0.15)
    assert abs(flat.blur_rate - TRUTH.blur_rate) > BLUR_STEP + 1e-9


def test_noise_in_a_depth_bin_of_one_tile_is_not_structure():
    # 32 x 32 planes of white noise: one tile per plane, so every depth bin holds a single tile.
    # Noise has no structure; its power in a bin of a few Fourier coefficients still exceeds the
    # expected noise power (signal > noise) in several percent of the points
    from deepcontrast.calibration.depthmap import tile_stats

    rng = np.random.default_rng(0)
    stack = 10 + rng.standard_normal((200, 32, 32))
    dmap = np.broadcast_to(np.arange(1, 201, dtype=float)[:, None, None] * VS[0], stack.shape)
    st, z = tile_stats(stack, np.array(dmap), VS, 10.0, {"photons": None, "read_noise": 1.0},
                       tissue=np.ones(stack.shape, bool))
    assert np.all(st["n_tiles"] == 1) and len(z) == 200
    assert np.mean(st["signal"] > st["noise"]) > 0.02  # what the spectral fit took as structure
    assert np.mean(st["significant"]) < 0.002


def test_deep_bin_of_one_noisy_tile_does_not_decide_the_blur():
    # seed 0: the deepest depth bin (89.5 um) holds a single tile whose noise passed as structure
    # at three frequencies; the model predicts no structure there at the true blur, and that one
    # bin made the fit choose blur_rate 0 (true 0.05)
    observed, _, depth = synthetic_spheroid(degradation=TRUTH, rng=0)
    deg, _ = calibrate(observed, "ZYX", voxel_size=VS, depth=depth)
    assert abs(deg.blur_rate - TRUTH.blur_rate) <= BLUR_STEP + 1e-9


def test_surface_auto_finds_the_map_from_the_stack(spheroid):
    observed, _, _ = spheroid
    deg, report = DeepTissueDegradation.calibrate(observed, "ZYX", voxel_size=VS, surface="auto")
    # measured 57 um, 0.04 (seeds 0-5: 50, 54, 71, 57, 69, 61 um, 0.04 in 6/6: as with the true map); 64-82 um
    # before the dim deepest tissue was found (it had depth 0, and the map's deepest bins were missing)
    assert deg.attenuation_length == pytest.approx(TRUTH.attenuation_length, rel=0.25)
    assert abs(deg.blur_rate - TRUTH.blur_rate) <= BLUR_STEP + 1e-9
    assert report.inputs["depth_map"]["source"] == "surface_depth(surface='first')"
    assert report.inputs["depth"] is None
    assert "nan" not in json.dumps(report.to_dict()).lower()


def test_depth_map_list_one_per_image(spheroid):
    observed, _, depth = spheroid
    deg, _ = calibrate([observed, observed[:, ::-1]], "ZYX", voxel_size=VS, depth=[depth, depth[:, ::-1]])
    one, _ = calibrate(observed, "ZYX", voxel_size=VS, depth=depth)
    assert deg.attenuation_length == pytest.approx(one.attenuation_length, rel=0.05)


def test_depth_map_of_wrong_shape():
    with pytest.raises(ValueError, match=r"image 0: depth map of shape \(4, 8\) does not match"):
        calibrate(np.random.default_rng(0).random((4, 8, 8)), "ZYX", depth=np.zeros((4, 8)))


def test_auto_surface_with_a_depth():
    with pytest.raises(ValueError, match="leave depth at 0"):
        calibrate(np.random.default_rng(0).random((4, 8, 8)), "ZYX", surface="auto", depth=10.0)


def test_depth_list_of_the_wrong_length():
    with pytest.raises(ValueError, match="list of 1 entries for 2 images"):
        calibrate([np.ones((4, 8, 8)), np.zeros((4, 8, 8))], "ZYX", depth=[np.zeros((4, 8, 8))])
