"""deepcontrast.consistency: known answers from renders of synthetic tissue (no networks).

Measured here (synthetic_tissue (24, 128, 128), rng=3, voxels (2, .5, .5) um, 50 photons):
the clean truth as the iterate is restored to within -1%..+4% of each deep plane's own depth
(32-46 um; shallow planes come out deeper than they are, 7 um at the surface: the truth is
sharper than the surface image by psf_sigma 0.3 um, the blur of 10 um of tissue), chi2
0.95-1.00; the raw as the iterate gives 0 um and chi2 0; a render 20 um shallower gives
20.5-24.4 um over the deep third (median 23.2) in 3D and 10.3 / 20.8 um for 10 / 20 um in 2D
(3D is worse: the forward model's axial blur composes only approximately), chi2 0.94-1.00;
20 planted bright disks are found with AUC 0.974.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.stats import rankdata

from deepcontrast import DeepTissueDegradation
from deepcontrast.consistency import ConsistencyReport, check_consistency
from deepcontrast.data import synthetic_tissue

VS = (2.0, 0.5, 0.5)
DEG = DeepTissueDegradation(photons=50)
NZ = 24


def _shallower(clean, d0, deg=DEG, vs=VS):
    """The clean truth rendered (without noise) d0 um shallower than each plane's depth."""
    z = 2.0 * np.arange(len(clean))
    dm = np.broadcast_to(np.maximum(z - d0, 0)[:, None, None], clean.shape).copy()
    return deg.replace(photons=None).render(clean, "ZYX", depth=dm, voxel_size=vs)


@pytest.fixture(scope="module")
def sample():
    raw, clean = synthetic_tissue((NZ, 128, 128), rng=3, degradation=DEG)
    shallow = _shallower(clean, 20.0)
    report = check_consistency(raw, [clean, raw, shallow], "ZYX", DEG, voxel_size=VS)
    return raw, clean, shallow, report


def _deep(n=NZ):
    return np.arange(2 * n // 3, n)


def test_clean_truth_is_restored_to_each_planes_depth_with_chi2_about_1(sample):
    _, _, _, rep = sample
    z = rep.plane_depth
    deep = _deep()
    assert np.all(np.abs(rep.restored_depth[0, deep] - z[deep]) <= 0.25 * z[deep])  # measured -1%..+4%
    assert np.all((rep.chi2[0] > 0.85) & (rep.chi2[0] < 1.15))  # measured 0.95-1.00
    assert rep.restored_depth.shape == rep.chi2.shape == (3, NZ)


def test_raw_as_iterate_restores_nothing(sample):
    _, _, _, rep = sample
    assert np.all(rep.restored_depth[1] < 0.5)
    assert np.all(rep.chi2[1] < 0.05)  # the raw explains itself, noise and all
    assert "no restoration happened" in rep.summary()


def test_render_shallower_by_d0_is_restored_by_d0_in_3d(sample):
    _, _, _, rep = sample
    deep = _deep()
    assert abs(np.median(rep.restored_depth[2, deep]) - 20.0) <= 0.25 * 20.0  # measured 23.2
    assert np.all((rep.chi2[2] > 0.85) & (rep.chi2[2] < 1.15))
    # restored depth is continuous, not the 5 um grid
    assert not np.allclose(rep.restored_depth[2, deep] % 5.0, 0.0)


@pytest.mark.parametrize("d0", [10.0, 20.0])
def test_render_shallower_by_d0_is_restored_by_d0_in_2d(d0):
    raw, clean = synthetic_tissue((192, 192), rng=3, degradation=DEG, depth=40.0)
    it = DEG.replace(photons=None).render(clean, "YX", depth=40.0 - d0, voxel_size=VS[1:])
    rep = check_consistency(raw, [it], "YX", DEG, voxel_size=VS[1:], depth=40.0)
    assert rep.restored_depth.shape == (1, 1)
    assert abs(rep.restored_depth[0, 0] - d0) <= 0.1 * d0  # measured 10.3, 20.8
    assert 0.85 < rep.chi2[0, 0] < 1.15
    assert rep.residual_map(1).shape == raw.shape
    assert [r["region"] for r in rep.to_table()] == ["all"]


def test_residual_map_reproduces_chi2(sample):
    raw, _, _, rep = sample
    r = rep.residual_map(3)
    assert r.shape == raw.shape and r.dtype == np.float32
    n = r[0].size
    np.testing.assert_allclose((r.astype(float) ** 2).reshape(NZ, -1).sum(1) / (n - 2), rep.chi2[2], rtol=1e-3)
    assert abs(float(r.mean())) < 0.05  # the offset fit centres it


def _auc(score, positive):
    """Area under the ROC curve by the rank (Mann-Whitney) formula."""
    ranks = rankdata(score)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_residual_map_finds_planted_bright_disks(sample):
    raw, _, shallow, _ = sample
    it = shallow.copy()
    rng = np.random.default_rng(0)
    mask = np.zeros(raw.shape, bool)
    yy, xx = np.mgrid[:128, :128]
    for _ in range(20):
        k = rng.choice(_deep())
        cy, cx = rng.integers(8, 120, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
        it[k][disk] = np.percentile(it[k], 99.9)
        mask[k][disk] = True
    rep = check_consistency(raw, [it], "ZYX", DEG, voxel_size=VS)
    r = rep.residual_map(1)
    score = -ndi.uniform_filter(r, (1, 7, 7))  # invented light: the raw is darker than the pushed iterate
    assert _auc(score[_deep()].ravel(), mask[_deep()].ravel()) >= 0.95  # measured 0.974


def test_axes_order_does_not_matter(sample):
    raw, clean, shallow, rep = sample
    t = (1, 2, 0)  # ZYX -> YXZ
    rep_t = check_consistency(raw.transpose(t), [clean.transpose(t), shallow.transpose(t)], "YXZ", DEG,
                              voxel_size=(0.5, 0.5, 2.0))
    np.testing.assert_allclose(rep_t.restored_depth, rep.restored_depth[[0, 2]], atol=1e-6)
    np.testing.assert_allclose(rep_t.chi2, rep.chi2[[0, 2]], rtol=1e-5)
    np.testing.assert_allclose(rep_t.residual_map(2), rep.residual_map(3).transpose(t), atol=1e-4)


def test_per_plane_depth_map_equals_the_scalar_depth(sample):
    raw, clean, _, rep = sample
    dmap = np.broadcast_to(rep.plane_depth[:, None, None], raw.shape)
    rep_m = check_consistency(raw, [clean], "ZYX", DEG, voxel_size=VS, depth=dmap)
    np.testing.assert_allclose(rep_m.restored_depth[0], rep.restored_depth[0], atol=1e-3)
    np.testing.assert_allclose(rep_m.chi2[0], rep.chi2[0], rtol=1e-4)
    assert rep_m.inputs["depth"] == "map"


def test_tilted_depth_map_clean_truth_is_restored_to_each_planes_depth():
    _, clean = synthetic_tissue((16, 128, 128), rng=3, degradation=DEG)
    dmap = (2.0 * np.arange(16))[:, None, None] + 0.1 * np.arange(128)[None, None, :] + np.zeros((16, 128, 128))
    raw = DEG.render(clean, "ZYX", depth=dmap, voxel_size=VS, rng=1)  # a surface tilted by 6 um across X
    rep = check_consistency(raw, [clean], "ZYX", DEG, voxel_size=VS, depth=dmap)
    deep = _deep(16)
    assert np.all(np.abs(rep.restored_depth[0, deep] - rep.plane_depth[deep]) <= 0.25 * rep.plane_depth[deep])
    assert np.all((rep.chi2 > 0.85) & (rep.chi2 < 1.15))


def test_curved_sample_is_compared_on_its_tissue():
    # a spheroid in black medium, restored exactly 10 um (the truth rendered 10 um shallower):
    # compared on its tissue alone, chi2 is 1 and the middle planes read 10 um; the medium
    # (half of a plane, residual 0) used to pull chi2 to 0.2-0.5
    from deepcontrast.data import synthetic_spheroid

    deg = DeepTissueDegradation(photons=50, attenuation_length=60.0, blur_rate=0.05)
    raw, clean, depth = synthetic_spheroid((32, 128, 128), voxel_size=VS, degradation=deg, rng=3)
    it = deg.replace(photons=None).render(clean, "ZYX", depth=np.maximum(depth - 10, 0), voxel_size=VS)
    rep = check_consistency(raw, [it], "ZYX", deg, voxel_size=VS, depth=depth)
    for z in (2, 16, 31):  # a plane's depth: the median over its tissue
        assert rep.plane_depth[z] == pytest.approx(np.median(depth[z][depth[z] > 0]), rel=1e-5)
    tissue = rep.plane_depth > 0
    assert tissue.sum() == 30 and np.all((rep.chi2[0, tissue] > 0.85) & (rep.chi2[0, tissue] < 1.15))
    middle = (rep.plane_depth > 18) & (rep.plane_depth < 36)
    assert middle.sum() >= 6 and np.all(np.abs(rep.restored_depth[0, middle] - 10) <= 2.5)


def test_noise_free_degradation_takes_the_noise_from_the_raw(sample):
    raw, clean, _, _ = sample
    rep = check_consistency(raw, [clean], "ZYX", DeepTissueDegradation(), voxel_size=VS)
    assert "mean-variance fit" in rep.noise["source"] and "mean-variance fit" in rep.summary()
    assert abs(rep.noise["photons"] - 50) < 5
    assert np.all((rep.chi2 > 0.85) & (rep.chi2 < 1.15))


def test_auto_calibrates_from_the_raw(sample):
    raw, clean, _, _ = sample
    rep = check_consistency(raw, [clean], "ZYX", "auto", voxel_size=VS)
    assert "calibrated" in rep.noise["source"]
    assert np.all((rep.chi2 > 0.85) & (rep.chi2 < 1.15))
    assert np.all(np.diff(rep.restored_depth[0, ::4]) > 0)  # deeper planes restored further


def test_report_outputs(sample):
    _, _, _, rep = sample
    assert isinstance(rep, ConsistencyReport)
    rows = rep.to_table()
    assert len(rows) == 3 * 3 and {r["region"] for r in rows} == {"shallow", "middle", "deep"}
    deep_rows = [r for r in rows if r["region"] == "deep"]
    assert deep_rows[0]["restored_depth"] > deep_rows[2]["restored_depth"] > deep_rows[1]["restored_depth"]
    d = rep.to_dict()
    json.dumps(d)
    assert np.shape(d["restored_depth"]) == (3, NZ) and d["cost"]["forward_passes"] > 0
    text = rep.summary()
    assert "restored" in text and "chi2" in text
    fig = rep.figure()
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3 + 1


def test_iterates_as_one_array(sample):
    raw, clean, _, rep = sample
    one = check_consistency(raw, np.stack([clean]), "ZYX", DEG, voxel_size=VS)
    np.testing.assert_allclose(one.restored_depth[0], rep.restored_depth[0])


# -- bad input ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    raw, clean = synthetic_tissue((4, 32, 32), rng=1, degradation=DEG)
    return raw, clean


def test_iterate_of_another_shape_is_named(small):
    raw, clean = small
    with pytest.raises(ValueError, match="iterate 2 has shape"):
        check_consistency(raw, [clean, clean[:, :16]], "ZYX", DEG)


@pytest.mark.parametrize("where, message", [("iterate", "iterate 1 contains 1 NaN"), ("raw", "raw image contains 1 NaN")])
def test_nan_is_named(small, where, message):
    raw, clean = (a.copy() for a in small)
    (clean if where == "iterate" else raw)[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=message):
        check_consistency(raw, [clean], "ZYX", DEG)


def test_wrong_axes_are_named(small):
    raw, clean = small
    with pytest.raises(ValueError, match="axes 'YX' do not match raw image"):
        check_consistency(raw, [clean], "YX", DEG)


def test_channel_axis_is_refused_with_the_fix(small):
    raw, clean = small
    with pytest.raises(ValueError, match=r"each channel/time point on its own, e.g. raw\[0, :, :\]"):
        check_consistency(raw, [clean], "CYX", DEG)


def test_empty_iterates_are_refused(small):
    raw, _ = small
    with pytest.raises(ValueError, match="no iterates given"):
        check_consistency(raw, [], "ZYX", DEG)


def test_bad_degradation_is_refused(small):
    raw, clean = small
    with pytest.raises(ValueError, match="degradation must be a DeepTissueDegradation"):
        check_consistency(raw, [clean], "ZYX", {"photons": 50})


def test_depth_map_of_wrong_shape_is_refused(small):
    raw, clean = small
    with pytest.raises(ValueError, match="depth map of shape"):
        check_consistency(raw, [clean], "ZYX", DEG, depth=np.zeros((4, 32)))


def test_residual_map_iteration_out_of_range(small):
    raw, clean = small
    rep = check_consistency(raw, [clean], "ZYX", DEG)
    with pytest.raises(ValueError, match="k must be an iteration from 1 to 1"):
        rep.residual_map(0)


def test_noise_free_raw_without_noise_model_is_refused():
    ramp = np.broadcast_to(np.linspace(0, 1, 64, dtype=np.float32), (4, 64, 64))  # no noise, nothing to fit
    with pytest.raises(ValueError, match="shows no noise"):
        check_consistency(ramp, [ramp], "ZYX", DeepTissueDegradation())


def test_consistency_does_not_import_tensorflow():
    code = "import sys, deepcontrast.consistency; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("deg", [DEG, DeepTissueDegradation(photons=50, background=0.1, out_of_focus=0.5)])
def test_search_pushes_exactly_as_the_forward_model(deg):
    """The search transforms each iterate once for all grid depths; the push must equal the forward model's."""
    from deepcontrast.consistency.search import _Search

    _, clean = synthetic_tissue((10, 48, 64), rng=1, degradation=deg)
    z = 2.0 * np.arange(10) + 3.0
    fwd = deg.replace(photons=None, read_noise=0.0)
    grid = np.linspace(0.0, 40.0, 9)
    search = _Search(fwd, z, VS, True, grid)
    for j in (1, 4, 8):
        dmap = np.broadcast_to(np.maximum(z - grid[j], 0.0)[:, None, None], clean.shape)
        expected = fwd(clean, "ZYX", extra_depth=grid[j], depth=dmap, voxel_size=VS)
        np.testing.assert_allclose(search.forward(clean, j), expected, rtol=0, atol=1e-6 * np.abs(expected).max())
