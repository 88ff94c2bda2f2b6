"""Tests of deepcontrast.data: DegradedRawData, create_patches + settings, synthetic_tissue."""
import json

import numpy as np
import pytest
import tifffile
from csbdeep.data import RawData
from csbdeep.data import create_patches as csbdeep_create_patches
from csbdeep.io import load_training_data
from scipy import ndimage

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import (DegradedRawData, create_patches, deep_tissue_distortions, load_settings,
                               settings_path, synthetic_tissue)

VS = (2.0, 0.5, 0.5)
DEG = DeepTissueDegradation(photons=50)


def contrast(img):
    """std/mean after light smoothing (so shot noise does not count as contrast)."""
    s = ndimage.gaussian_filter(np.asarray(img, np.float64), 1.0)
    return s.std() / s.mean()


def slice_contrast(vol):
    return vol.std(axis=(1, 2)) / vol.mean(axis=(1, 2))


@pytest.fixture(scope="module")
def stack():
    return synthetic_tissue((12, 48, 48), rng=3)[1]


@pytest.fixture
def folder(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        tifffile.imwrite(raw / f"img{i}.tif", synthetic_tissue((8, 40, 40), rng=i)[0])
    return tmp_path


# -- pairs --------------------------------------------------------------------------------
def test_pairs_input_has_lower_contrast_than_target(stack):
    rd = DegradedRawData.from_arrays([stack], "ZYX", DEG, (20, 40), normalize_planes=False, n_degradations=3,
                                     voxel_size=VS, rng=0)
    pairs = list(rd.generator())
    assert len(pairs) == rd.size == 3
    for x, y, axes, mask in pairs:
        assert axes == "ZYX" and mask is None
        assert x.shape == y.shape == stack.shape and x.dtype == np.float32
        np.testing.assert_array_equal(y, stack)
        assert contrast(x) < 0.85 * contrast(y)


def test_fixed_extra_depth_equals_forward_model(stack):
    deg = DeepTissueDegradation()  # no noise: the pair is exactly the forward model
    rd = DegradedRawData.from_arrays(stack, "ZYX", deg, 25, normalize_planes=False, voxel_size=VS, depth=5,
                                     surface="last", rng=0)
    (x, y, _, _), = rd.generator()
    np.testing.assert_allclose(x, deg(stack, "ZYX", 25, voxel_size=VS, depth=5, surface="last"), rtol=1e-5, atol=1e-6)


def test_copies_get_their_own_extra_depth(stack):
    deg = DeepTissueDegradation()
    rd = DegradedRawData.from_arrays([stack], "ZYX", deg, (5, 60), normalize_planes=False, n_degradations=4,
                                     voxel_size=VS, rng=1)
    means = [x.mean() for x, _, _, _ in rd.generator()]
    # attenuation exp(-d/150) makes each draw visible in the mean; all within the range's bounds
    lo, hi = stack.mean() * np.exp(-60 / 150), stack.mean() * np.exp(-5 / 150)
    assert len(set(np.round(means, 6))) == 4
    assert all(lo * 0.999 <= m <= hi * 1.001 for m in means)


def test_same_seed_same_pairs_and_repeatable_iteration(stack):
    def pairs(seed):
        rd = DegradedRawData.from_arrays([stack], "ZYX", DEG, (10, 40), n_degradations=2, voxel_size=VS, rng=seed)
        return rd, [x for x, _, _, _ in rd.generator()]

    rd, a = pairs(7)
    _, b = pairs(7)
    _, c = pairs(8)
    again = [x for x, _, _, _ in rd.generator()]
    for u, v, w in zip(a, b, again):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(u, w)
    assert not np.array_equal(a[0], c[0])


def test_settings_record_everything(stack):
    rd = DegradedRawData.from_arrays([stack], "ZYX", DEG.to_dict(), 30, n_degradations=2, voxel_size=VS, rng=0)
    s = rd.settings
    assert s["degradation"] == DEG.to_dict()
    assert s["extra_depth"] == [30.0, 30.0]
    assert (s["n_degradations"], s["voxel_size"], s["surface"], s["depth"], s["axes"]) == (2, list(VS), "first", 0.0, "ZYX")
    assert s["calibration"] is None
    assert json.loads(json.dumps(s)) == s
    assert isinstance(rd, RawData)


def test_from_folder_streams_one_image_at_a_time(folder, monkeypatch):
    import deepcontrast.data.generate as gen

    reads = []
    real = gen.read_tiff

    def counting_read(path, *a, **k):
        reads.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(gen, "read_tiff", counting_read)
    rd = gen.DegradedRawData.from_folder(folder, ["raw"], "ZYX", DEG, (10, 40), normalize_planes=False,
                                         n_degradations=2, voxel_size=VS, rng=0)
    assert rd.size == 6 and rd.shapes == [(8, 40, 40)] * 3
    assert reads == []  # construction reads headers only
    it = rd.generator()
    x, y, axes, _ = next(it)
    assert len(reads) == 1
    np.testing.assert_array_equal(y, tifffile.imread(folder / "raw" / "img0.tif"))
    next(it)
    assert len(reads) == 1  # second copy of the same image, no new read
    rest = list(it)
    assert len(rest) == 4 and len(reads) == 3


def test_images_of_different_shapes(folder):
    tifffile.imwrite(folder / "raw" / "small.tif", synthetic_tissue((6, 32, 36), rng=9)[0])
    rd = DegradedRawData.from_folder(folder, ["raw"], "ZYX", DEG, 20, voxel_size=VS, rng=0)
    assert [y.shape for _, y, _, _ in rd.generator()] == [(8, 40, 40)] * 3 + [(6, 32, 36)]
    X, _, _ = create_patches(rd, (4, 32, 32), 2, verbose=False)
    assert X.shape == (8, 1, 4, 32, 32)


def test_absolute_source_dir(folder):
    rd = DegradedRawData.from_folder("unused", [folder / "raw"], "ZYX", DEG, 20, voxel_size=VS)
    assert rd.size == 3


# -- create_patches, npz + settings ---------------------------------------------------------
def test_npz_round_trip_and_settings(folder):
    rd = DegradedRawData.from_folder(folder, ["raw"], "ZYX", DEG, (10, 40), n_degradations=2, voxel_size=VS, rng=0)
    out = folder / "data" / "my_training_data.npz"
    X, Y, axes = create_patches(rd, (4, 16, 16), 5, save_file=out, verbose=False)
    assert X.shape == Y.shape == (30, 1, 4, 16, 16) and axes == "SCZYX"
    (Xt, Yt), (Xv, Yv), axes_l = load_training_data(out, validation_split=0.2)
    assert len(Xt) + len(Xv) == 30 and axes_l == "SZYXC"
    assert settings_path(out) == folder / "data" / "my_training_data.settings.json"
    assert load_settings(out) == rd.settings
    assert sorted(p.name for p in out.parent.iterdir()) == ["my_training_data.npz", "my_training_data.settings.json"]


def test_patches_input_lower_contrast(stack):
    rd = DegradedRawData.from_arrays([stack], "ZYX", DeepTissueDegradation(), 40, voxel_size=VS, rng=0)
    X, Y, _ = create_patches(rd, (12, 48, 48), 1, verbose=False, patch_filter=None, normalization=None)
    assert contrast(X[0, 0]) < 0.8 * contrast(Y[0, 0])


def test_overwrite_false_refuses(tmp_path, stack):
    out = tmp_path / "d.npz"
    out.write_bytes(b"keep")
    rd = DegradedRawData.from_arrays([stack], "ZYX", DEG, 20, voxel_size=VS)
    with pytest.raises(FileExistsError, match="d.npz"):
        create_patches(rd, (4, 16, 16), 2, save_file=out, overwrite=False, verbose=False)
    assert out.read_bytes() == b"keep"


def test_load_settings_missing_is_none(tmp_path):
    assert load_settings(tmp_path / "plain.npz") is None


def test_transform_with_csbdeep():
    img = synthetic_tissue((64, 64), rng=1)[0]
    raw = RawData.from_arrays([img], [img], axes="YX")
    t = deep_tissue_distortions(DEG, (10, 40), n_degradations=3, depth=60, rng=0)
    assert t.size == 3
    X, Y, axes = csbdeep_create_patches(raw, (32, 32), 2, transforms=[t], verbose=False)
    assert X.shape == (6, 1, 32, 32) and axes == "SCYX"
    pairs = list(t.generator(iter([(img, img, "YX", None)])))
    assert len(pairs) == 3 and all(contrast(x) < contrast(y) for x, y, _, _ in pairs)


# -- synthetic_tissue -----------------------------------------------------------------------
def test_synthetic_tissue_contrast_falls_with_depth():
    observed, clean = synthetic_tissue((24, 96, 96), rng=0)
    assert observed.shape == clean.shape == (24, 96, 96)
    assert observed.dtype == clean.dtype == np.float32
    assert clean.min() >= 0 and clean.max() <= 1 and 0.05 < clean.mean() < 0.6
    co, cc = slice_contrast(observed), slice_contrast(clean)
    third = len(co) // 3
    assert co[-third:].mean() < 0.7 * co[:third].mean()
    assert np.corrcoef(np.arange(len(co)), co)[0, 1] < -0.9
    assert 0.8 < cc[-third:].mean() / cc[:third].mean() < 1.25


def test_synthetic_tissue_deterministic_and_seeded():
    a, ca = synthetic_tissue((6, 32, 32))
    b, cb = synthetic_tissue((6, 32, 32))
    c, cc = synthetic_tissue((6, 32, 32), rng=1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ca, cb)
    assert not np.array_equal(ca, cc)


def test_synthetic_tissue_2d_depth():
    shallow, clean = synthetic_tissue((96, 96), depth=5)
    deep, clean2 = synthetic_tissue((96, 96), depth=90)
    assert shallow.shape == clean.shape == (96, 96)
    np.testing.assert_array_equal(clean, clean2)  # same structure, seen at two depths
    assert contrast(deep) < 0.7 * contrast(shallow)


def test_synthetic_tissue_custom_degradation_is_used():
    deg = DeepTissueDegradation(attenuation_length=None, scattering_length=None, psf_sigma=0, blur_rate=0)
    observed, clean = synthetic_tissue((4, 32, 32), degradation=deg)
    np.testing.assert_allclose(observed, clean, atol=1e-5)


# -- bad input ------------------------------------------------------------------------------
def test_no_matching_files_names_folder_and_pattern(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no files matching pattern '\*\.tif\*' in folder .*raw"):
        DegradedRawData.from_folder(tmp_path, ["raw"], "ZYX", DEG, 20)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        DegradedRawData.from_folder(tmp_path, ["nope"], "ZYX", DEG, 20)


def test_corrupt_tiff_is_named(folder):
    (folder / "raw" / "broken.tif").write_bytes(b"this is not a tiff")
    with pytest.raises(ValueError, match="broken.tif"):
        DegradedRawData.from_folder(folder, ["raw"], "ZYX", DEG, 20)


def test_dims_not_matching_axes_name_file_and_shape(folder):
    tifffile.imwrite(folder / "raw" / "flat.tif", np.zeros((40, 40), np.float32))
    with pytest.raises(ValueError, match=r"flat.tif has 2 dimensions \(40, 40\)"):
        DegradedRawData.from_folder(folder, ["raw"], "ZYX", DEG, 20)


def test_array_dims_not_matching_axes(stack):
    with pytest.raises(ValueError, match=r"image 1 with 2 dimensions \(48, 48\)"):
        DegradedRawData.from_arrays([stack, stack[0]], "ZYX", DEG, 20)


def test_patch_size_larger_than_image_writes_nothing(folder):
    rd = DegradedRawData.from_folder(folder, ["raw"], "ZYX", DEG, 20, voxel_size=VS)
    out = folder / "out.npz"
    with pytest.raises(ValueError, match=r"larger than .*img0.tif of shape \(8, 40, 40\) along Z \(16 > 8\)"):
        create_patches(rd, (16, 32, 32), 4, save_file=out, verbose=False)
    assert not out.exists() and not settings_path(out).exists()


def test_patch_size_wrong_length(stack):
    rd = DegradedRawData.from_arrays([stack], "ZYX", DEG, 20)
    with pytest.raises(ValueError, match="one patch size per axis"):
        create_patches(rd, (16, 16), 4, verbose=False)


@pytest.mark.parametrize("extra_depth, message", [
    ((40, 10), "inverted"),
    ((), "range"),
    ((1, 2, 3), "range"),
    (-5, ">= 0"),
    ((-5, 10), ">= 0"),
    (float("nan"), "finite"),
    ("deep", "number"),
])
def test_bad_extra_depth(stack, extra_depth, message):
    with pytest.raises(ValueError, match=message):
        DegradedRawData.from_arrays([stack], "ZYX", DEG, extra_depth)


@pytest.mark.parametrize("kwargs, message", [
    (dict(depth=-1), "depth must be >= 0"),
    (dict(n_degradations=0), "n_degradations"),
    (dict(surface="top"), "surface"),
    (dict(voxel_size=(0.5, 0.5)), "voxel_size"),
    (dict(voxel_size=(2, -0.5, 0.5)), "voxel_size"),
])
def test_bad_keywords(stack, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DegradedRawData.from_arrays([stack], "ZYX", DEG, 20, **kwargs)


def test_bad_degradation(stack):
    with pytest.raises(ValueError, match="DeepTissueDegradation"):
        DegradedRawData.from_arrays([stack], "ZYX", "strong", 20)


def test_empty_images():
    with pytest.raises(ValueError, match="at least one"):
        DegradedRawData.from_arrays([], "YX", DEG, 20)


def test_nan_image_named_when_generated(folder):
    bad = np.ones((8, 40, 40), np.float32)
    bad[0, 0, 0] = np.nan
    tifffile.imwrite(folder / "raw" / "nan.tif", bad)
    rd = DegradedRawData.from_folder(folder, ["raw"], "ZYX", DEG, 20, pattern="nan.tif")
    with pytest.raises(ValueError, match="nan.tif.*NaN"):
        list(rd.generator())


def test_create_patches_rng_reproducible_and_leaves_global_state_alone(stack):
    rd = DegradedRawData.from_arrays([stack], "ZYX", DEG, (10, 40), voxel_size=VS, rng=0)
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    X1, _, _ = create_patches(rd, (4, 16, 16), 6, rng=5, verbose=False)
    assert np.random.random() == expected_next
    X2, _, _ = create_patches(rd, (4, 16, 16), 6, rng=5, verbose=False)
    X3, _, _ = create_patches(rd, (4, 16, 16), 6, rng=6, verbose=False)
    np.testing.assert_array_equal(X1, X2)
    assert not np.array_equal(X1, X3)


def test_save_settings_round_trip(tmp_path):
    from deepcontrast.data import save_settings

    p = save_settings(tmp_path / "d.npz", {"extra_depth": [1.0, 2.0]})
    assert p == settings_path(tmp_path / "d.npz")
    assert load_settings(tmp_path / "d.npz") == {"extra_depth": [1.0, 2.0]}
    p.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_settings(tmp_path / "d.npz")


def test_noise_free_training_degradation_warns_with_the_fix(caplog):
    img = synthetic_tissue((32, 32), rng=0)[0]
    with caplog.at_level("WARNING", logger="deepcontrast.data.transform"):
        DegradedRawData.from_arrays([img], "YX", DeepTissueDegradation(), 20, rng=0)
    assert "adds no noise" in caplog.text and "photons=" in caplog.text and "'auto'" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="deepcontrast.data.transform"):
        DegradedRawData.from_arrays([img], "YX", DeepTissueDegradation(photons=50), 20, rng=0)
        DegradedRawData.from_arrays([img], "YX", DeepTissueDegradation(read_noise=0.01), 20, rng=0)
    assert "adds no noise" not in caplog.text


def test_microscope_needs_degradation_auto():
    from deepcontrast import DeepTissueDegradation
    from deepcontrast.data import DegradedRawData, synthetic_tissue

    obs, _ = synthetic_tissue((8, 48, 48), rng=0)
    with pytest.raises(ValueError, match="degradation='auto'"):
        DegradedRawData.from_arrays([obs], "ZYX", DeepTissueDegradation(photons=50), 20, microscope="widefield")


def _pairs_of(*pairs, axes="YX"):
    """A RawData of given (input, target) arrays."""
    return RawData(lambda: ((x, y, axes, None) for x, y in pairs), len(pairs), "given pairs")


def test_patches_are_the_same_window_of_input_and_target_where_the_filter_allows():
    # values that name their position: each patch's first value says where it was cut
    y = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    X, Y, axes = create_patches(_pairs_of((-y, y)), (8, 10), 200, normalization=None, verbose=False, rng=0)
    assert axes == "SCYX" and X.shape == (200, 1, 8, 10)
    np.testing.assert_array_equal(X, -Y)
    r, c = np.divmod(Y[:, 0, 0, 0].astype(int), 50)
    for k in range(len(Y)):
        np.testing.assert_array_equal(Y[k, 0], y[r[k]:r[k] + 8, c[k]:c[k] + 10])
    assert r.max() <= 32 and c.max() <= 40 and len(set(zip(r, c))) > 150  # every window inside, spread out

    def one_centre(datas, patch_size):  # allows a single centre: every patch is the window around it
        allowed = np.zeros(datas[0].shape, bool)
        allowed[20, 30] = True
        return allowed

    _, Y1, _ = create_patches(_pairs_of((y, y)), (8, 10), 5, normalization=None, patch_filter=one_centre,
                              verbose=False, rng=0)
    for k in range(5):
        np.testing.assert_array_equal(Y1[k, 0], y[16:24, 25:35])


def test_default_normalization_draws_csbdeeps_percentiles():
    # a ramp 0..n has its percentile p at p / 100 * n; with the whole image as the patch, each
    # normalized copy gives back the low and high percentile it was normalized with. The input,
    # an affine copy of the target normalized with the same draws, comes out equal to it
    y = np.arange(32 * 32, dtype=np.float64).reshape(32, 32)
    n = y.size - 1
    X, Y, _ = create_patches(_pairs_of((3 * y + 7, y)), (32, 32), 60, verbose=False, rng=1)
    np.testing.assert_allclose(X, Y, rtol=1e-4, atol=1e-4)
    Y = Y[:, 0].astype(np.float64)
    span = (y[-1, -1] - y[0, 0]) / (Y[:, -1, -1] - Y[:, 0, 0])  # high - low
    low = -Y[:, 0, 0] * span
    p_low, p_high = 100 * low / n, 100 * (low + span) / n
    assert 1 - 1e-3 < p_low.min() and p_low.max() < 3 + 1e-3 and p_low.std() > 0.3
    assert 99.5 - 1e-3 < p_high.min() and p_high.max() < 99.9 + 1e-3 and p_high.std() > 0.05


def test_pairs_that_cannot_be_normalized_are_left_out(stack, caplog):
    import logging

    from csbdeep.data import norm_percentiles

    # an image of three stray photons (as at the edge of a curved sample): its percentiles up to
    # 99.9 are all 0, and CSBDeep divides by its eps of 1e-20
    sparse = np.zeros((64, 64), np.float32)
    sparse[[5, 30, 50], [7, 31, 44]] = 5.0
    ordinary = stack[len(stack) // 2]
    rd = DegradedRawData.from_arrays([ordinary, sparse], "YX", DeepTissueDegradation(photons=None), 10.0,
                                     voxel_size=VS[1:])
    _, Yc, _ = create_patches(rd, (16, 16), 4, verbose=False, rng=0, normalization=norm_percentiles())
    assert np.abs(Yc).max() > 1e15  # what the training would have diverged on
    with caplog.at_level(logging.INFO, logger="deepcontrast.data.patches"):
        X, Y, _ = create_patches(rd, (16, 16), 4, verbose=False, rng=0)
    assert len(X) == len(Y) == 4 and "4 of 8 pairs left out" in caplog.text
    assert np.isfinite(X).all() and np.abs(Y).max() < 10
    with pytest.raises(ValueError, match="no training pair could be normalized"):
        create_patches(DegradedRawData.from_arrays(sparse, "YX", DeepTissueDegradation(photons=None), 10.0),
                       (16, 16), 4, verbose=False, rng=0)
