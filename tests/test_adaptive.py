"""Depth-adaptive restoration: the rule on known arrays, and end to end on renders of synthetic tissue.

Measured here (synthetic_tissue (24, 96, 96), rng=3, voxels (2, .5, .5) um, 50 photons; iterate
k = the clean truth rendered 10 k um shallower than each plane, clipped at the surface; 30
invented bright disks planted in iterates 3 and 4 of the shallow third): iterates 1-2 have chi2
0.94-1.01 everywhere, the planted ones 3.9-8.2, so the shallow planes choose 2.03-2.07 and all
others 4; after smoothing, 2.03 at the top rising to 4 by plane 14 (largest step between
neighbouring planes 0.53); 60 forward passes, 2.5 s.
"""
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import synthetic_tissue
from deepcontrast.models.adaptive import AdaptiveMixin, blend_iterates, choose_iterations

VS = (2.0, 0.5, 0.5)
DEG = DeepTissueDegradation(photons=50)
NZ, N = 24, 96
PLANTED = np.arange(8)  # the shallow third


def _render_shallower(clean, d0, z):
    dm = np.broadcast_to(np.maximum(z - d0, 0)[:, None, None], clean.shape).copy()
    return DEG.replace(photons=None).render(clean, "ZYX", depth=dm, voxel_size=VS)


@pytest.fixture(scope="module")
def stack():
    raw, clean = synthetic_tissue((NZ, N, N), rng=3, degradation=DEG)
    z = VS[0] * np.arange(NZ)
    its = [_render_shallower(clean, 10.0 * k, z) for k in range(1, 5)]
    yy, xx = np.mgrid[:N, :N]
    disks = np.zeros((N, N), bool)
    for cy, cx in np.random.default_rng(0).integers(5, N - 5, (30, 2)):
        disks |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
    for k in (2, 3):  # iterates 3 and 4 invent bright disks in the shallow planes
        for p in PLANTED:
            its[k][p][disks] = np.percentile(its[k][p], 99.9)
    return raw, its


class FakeModel(AdaptiveMixin):
    """predict_iterative returns known iterates (in the image's axes); records its keyword arguments."""

    def __init__(self, iterates, axes="ZYX", settings=None):
        self.iterates, self.axes, self.degradation_settings, self.kwargs = iterates, axes, settings, None

    def predict_iterative(self, img, axes, n_iter, **kwargs):
        self.kwargs = kwargs
        order = [self.axes.index(a) for a in axes]
        return [np.transpose(y, order) for y in self.iterates[:n_iter]]


@pytest.fixture(scope="module")
def adaptive(stack):
    raw, its = stack
    model = FakeModel(its, settings={"degradation": DEG.to_dict(), "voxel_size": list(VS)})
    # a margin of 10 um beyond the surface: the shallow planes are then stopped by the chi2 rule (invented disks),
    # not by the surface (with the default margin 0, iterates 1-4 here restore planes 6-14 um deep a bit past it)
    restored, report = model.predict_adaptive(raw, "ZYX", max_iter=4, n_tiles=None, depth_margin=10.0)
    return model, restored, report


# -- the rule on known arrays -------------------------------------------------------------------
def test_depth_rule_known_answer():
    p = np.array([0.0, 5, 12, 20, 35, 60])
    rd = np.repeat(10.0 * np.arange(1, 5)[:, None], len(p), axis=1)  # iteration k restores 10 k um
    _, per_plane = choose_iterations(rd, np.ones_like(rd), p, depth_margin=10.0, smooth=0)
    np.testing.assert_allclose(per_plane, np.minimum((p + 10) / 10, 4))  # 1, 1.5, 2.2, 3, 4, 4


def test_chi2_rule_known_answer_and_no_trust_after_a_failure():
    rd = np.array([[5.0], [10], [15], [20]])
    c2 = np.array([[1.0], [1.1], [1.4], [1.0]])  # iteration 4 passes again, after 3 failed
    chosen, per_plane = choose_iterations(rd, c2, [100.0], chi2_tol=0.2, smooth=0)
    np.testing.assert_allclose(per_plane, [2 + (1.2 - 1.1) / (1.4 - 1.1)])
    np.testing.assert_allclose(chosen, per_plane)


def test_iterate_one_past_the_surface_blends_with_the_raw():
    _, per_plane = choose_iterations([[25.0]], [[1.0]], [0.0], depth_margin=10.0, smooth=0)
    np.testing.assert_allclose(per_plane, [0.4])  # restored depth 10 um = 0.4 of iteration 1's 25


def test_smoothing_removes_jumps_and_never_exceeds_the_rule():
    rng = np.random.default_rng(1)
    per_plane = np.clip(np.repeat([1.0, 4.0], 20) + rng.normal(0, 0.2, 40), 0, 4)
    rd = (np.arange(1, 5)[:, None] * np.ones(40)) * 10
    p = 10 * per_plane + 1e-9  # depth limits that give exactly this per-plane choice (default margin 0)
    chosen, pp = choose_iterations(rd, np.ones_like(rd), p, smooth=3)
    np.testing.assert_allclose(pp, per_plane, atol=1e-6)
    assert np.all(chosen <= ndi.median_filter(pp, 3, mode="nearest") + 1e-9)
    assert np.max(np.abs(np.diff(chosen))) < 0.75  # a step of 3 iterations spread over several planes
    np.testing.assert_array_equal(choose_iterations(rd, np.ones_like(rd), p, smooth=0)[0], pp)


@pytest.mark.parametrize("kw", [dict(chi2_tol=-0.1), dict(depth_margin=np.nan), dict(smooth=1.5)])
def test_choose_iterations_bad_parameters(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        choose_iterations([[1.0]], [[1.0]], [0.0], **kw)


def test_choose_iterations_shape_mismatch():
    with pytest.raises(ValueError, match="n_iter, Z"):
        choose_iterations(np.ones((2, 3)), np.ones((2, 4)), np.zeros(3))


# -- blending -----------------------------------------------------------------------------------
def test_blend_is_exactly_the_weighted_mean_of_neighbouring_iterates():
    rng = np.random.default_rng(2)
    raw = rng.random((5, 8, 9), dtype=np.float32)
    its = [rng.random((5, 8, 9), dtype=np.float32) for _ in range(3)]
    chosen = np.array([0.0, 0.25, 1.5, 2.75, 3.0])
    out = blend_iterates(raw, its, chosen, "ZYX")
    all_ = [raw] + its
    expect = [all_[0][0], 0.75 * raw[1] + 0.25 * its[0][1], 0.5 * its[0][2] + 0.5 * its[1][2],
              0.25 * its[1][3] + 0.75 * its[2][3], its[2][4]]
    np.testing.assert_allclose(out, np.stack(expect), rtol=1e-6, atol=1e-7)
    # Z elsewhere than first
    np.testing.assert_allclose(blend_iterates(np.moveaxis(raw, 0, -1), [np.moveaxis(y, 0, -1) for y in its], chosen,
                                              "YXZ"), np.moveaxis(out, 0, -1), rtol=1e-6)


@pytest.mark.parametrize("chosen", [np.array([0.0, 1, 4, 1, 1]), np.array([1.0, 1]), np.array([np.nan] * 5)])
def test_blend_bad_chosen(chosen):
    raw = np.zeros((5, 4, 4), np.float32)
    with pytest.raises(ValueError, match="chosen"):
        blend_iterates(raw, [raw, raw, raw], chosen, "ZYX")


# -- end to end with known iterates ---------------------------------------------------------------
def test_invented_structure_stops_the_shallow_planes_and_deep_planes_take_all(adaptive):
    _, _, rep = adaptive
    assert rep.chosen.shape == rep.per_plane.shape == (NZ,)
    assert rep.restored_depth.shape == rep.chi2.shape == (4, NZ)
    assert np.all((rep.per_plane[PLANTED] >= 2) & (rep.per_plane[PLANTED] < 2.5))  # measured 2.03-2.07
    np.testing.assert_allclose(rep.per_plane[PLANTED[-1] + 1:], 4.0)
    assert np.all(rep.chosen[PLANTED] < 2.5) and np.all(rep.chosen[-8:] == pytest.approx(4.0))
    assert np.all(np.diff(rep.chosen) >= -1e-9)  # rises with depth here
    assert np.max(np.abs(np.diff(rep.chosen))) < 0.75  # measured 0.53: no jumps
    assert np.all(rep.chosen <= ndi.median_filter(rep.per_plane, 3, mode="nearest") + 1e-9)


def test_output_is_the_blend_the_report_names_and_settings_come_from_the_model(adaptive, stack):
    model, restored, rep = adaptive
    raw, its = stack
    np.testing.assert_allclose(restored, blend_iterates(raw, its, rep.chosen, "ZYX"), rtol=1e-6)
    assert restored.dtype == np.float32 and restored.shape == raw.shape
    assert rep.params["degradation"] == "model" and rep.consistency.inputs["voxel_size"] == list(VS)
    assert model.kwargs == {"n_tiles": None}  # predict keyword arguments are passed on
    d = json.loads(json.dumps(rep.to_dict()))
    assert len(d["chosen"]) == NZ and len(d["chi2"]) == 4 and "chi2_tol" in d["rule"]
    assert "shallow" in rep.summary()


def test_axes_order_does_not_change_the_choice(adaptive, stack):
    _, restored, rep = adaptive
    raw, its = stack
    model = FakeModel(its)
    out, rep2 = model.predict_adaptive(np.moveaxis(raw, 0, -1), "YXZ", max_iter=4, degradation=DEG,
                                       voxel_size=VS[1:] + VS[:1], depth_margin=10.0)
    np.testing.assert_allclose(rep2.chosen, rep.chosen, atol=1e-6)
    np.testing.assert_allclose(out, np.moveaxis(restored, 0, -1), rtol=1e-5, atol=1e-6)


def test_2d_one_choice():
    raw, clean = synthetic_tissue((96, 96), rng=3, degradation=DEG, depth=40.0)
    its = [DEG.replace(photons=None).render(clean, "YX", depth=40.0 - 10 * k, voxel_size=VS[1:]) for k in (1, 2, 3)]
    model = FakeModel(its, axes="YX")
    out, rep = model.predict_adaptive(raw, "YX", max_iter=3, degradation=DEG, voxel_size=VS[1:], depth=40.0)
    assert rep.chosen.shape == (1,) and rep.chosen[0] == pytest.approx(3.0)  # all consistent, all within 40 um
    np.testing.assert_allclose(out, its[2], rtol=1e-6)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_iter", [0, 2.5, True])
def test_bad_max_iter(max_iter):
    with pytest.raises(ValueError, match="max_iter"):
        FakeModel([]).predict_adaptive(np.zeros((16, 16), np.float32), "YX", max_iter=max_iter)


def test_axes_that_do_not_match_the_image():
    with pytest.raises(ValueError, match="axes"):
        FakeModel([]).predict_adaptive(np.zeros((16, 16), np.float32), "ZYX")


def test_channel_axis_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="each channel"):
        FakeModel([]).predict_adaptive(np.zeros((2, 16, 16), np.float32), "CYX")


def test_degradation_falls_back_to_auto_without_training_settings():
    assert FakeModel([])._adaptive_degradation(None) == ("auto", "auto")
    deg, source = FakeModel([])._adaptive_degradation(DEG.to_dict())
    assert source == "given" and deg.to_dict() == DEG.to_dict()


# -- CLI ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    from csbdeep.io import save_training_data

    from deepcontrast.cli import main

    tmp = tmp_path_factory.mktemp("cli_adaptive")
    Y = np.random.default_rng(0).random((20, 1, 16, 16), dtype=np.float32)
    save_training_data(tmp / "data.npz", 0.5 * Y, Y, "SCYX")
    (tmp / "data.settings.json").write_text(json.dumps({"degradation": DEG.to_dict(), "extra_depth": [10, 40]}))
    (tmp / "config.json").write_text(json.dumps({"unet_n_depth": 1, "unet_n_first": 4, "train_batch_size": 4,
                                                 "train_tensorboard": False}))
    assert main(["train", str(tmp / "data.npz"), "--name", "m", "--basedir", str(tmp / "models"), "--epochs", "1",
                 "--steps", "2", "--config-json", str(tmp / "config.json")]) == 0
    raw, _ = synthetic_tissue((6, 32, 32), rng=4, degradation=DEG)
    import tifffile

    tifffile.imwrite(tmp / "stack.tif", raw)
    return tmp, raw


def test_cli_adaptive_writes_output_and_json_like_the_python_api(cli_model, capsys):
    import tifffile

    from deepcontrast.cli import main
    from deepcontrast.models import DeepContrast

    tmp, raw = cli_model
    args = ["predict", str(tmp / "models" / "m"), str(tmp / "stack.tif"), "-o", str(tmp / "out"), "--axes", "ZYX",
            "--adaptive", "--max-iter", "2", "--voxel-size", "2,0.5,0.5", "--depth", "20"]
    assert main(args) == 0
    out = tifffile.imread(tmp / "out" / "stack_adaptive.tif")
    d = json.loads((tmp / "out" / "stack.adaptive.json").read_text())
    assert d["output"] == "stack_adaptive.tif" and len(d["chosen"]) == 6 and "chi2_tol" in d["rule"]
    assert np.array(d["chi2"]).shape == np.array(d["restored_depth"]).shape == (2, 6)
    assert all(0 <= c <= 2 for c in d["chosen"]) and d["params"]["degradation"] == "model"
    model = DeepContrast(None, "m", basedir=str(tmp / "models"))
    expect, report = model.predict_adaptive(raw, "ZYX", max_iter=2, voxel_size=(2, 0.5, 0.5), depth=20.0)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d["chosen"], report.chosen)
    # an existing output is not replaced without --overwrite, and is with it
    assert main(args) == 1 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_cli_adaptive_refuses_fixed_iterations(cli_model, capsys):
    from deepcontrast.cli import main

    tmp, _ = cli_model
    assert main(["predict", str(tmp / "models" / "m"), str(tmp / "stack.tif"), "-o", str(tmp / "o2"), "--axes", "ZYX",
                 "--adaptive", "--n-iter", "2"]) == 1
    assert "--max-iter" in capsys.readouterr().err
    assert main(["predict", str(tmp / "models" / "m"), str(tmp / "stack.tif"), "-o", str(tmp / "o2"), "--axes", "ZYX",
                 "--adaptive", "--max-iter", "0"]) == 1
    assert "--max-iter must be >= 1" in capsys.readouterr().err


# -- blockwise ------------------------------------------------------------------------------------
def test_blockwise_with_chosen_blends_each_plane_like_in_memory(cli_model, tmp_path):
    pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    from deepcontrast.models import DeepContrast
    from deepcontrast.models.predict import TILE_TOLERANCE

    tmp, raw = cli_model
    model = DeepContrast(None, "m", basedir=str(tmp / "models"))
    chosen = np.array([0.0, 0.5, 1.0, 1.25, 2.0, 3.0])  # the raw, blends, whole iterates
    out = model.predict_blockwise(raw, "ZYX", tmp_path / "out.zarr", chosen=chosen, block_size=(2, 32, 32),
                                  save_all_iterations=True)
    its = model.predict_iterative(raw, "ZYX", 3)
    ref = blend_iterates(raw, its, chosen, "ZYX")
    assert out.shape == raw.shape
    assert np.abs(out[...] - ref).max() <= TILE_TOLERANCE * (ref.max() - ref.min())
    np.testing.assert_array_equal(out[0], raw[0].astype(np.float32))  # chosen 0: the raw itself
    import zarr

    it1 = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["iter1"]["0"][...]
    assert np.abs(it1 - its[0]).max() <= TILE_TOLERANCE * (its[0].max() - its[0].min())
    # a run with another choice is not resumed into this output
    with pytest.raises(ValueError, match="chosen"):
        model.predict_blockwise(raw, "ZYX", tmp_path / "out.zarr", chosen=chosen[::-1], block_size=(2, 32, 32),
                                save_all_iterations=True)


@pytest.mark.parametrize("chosen, n_iter, match", [(np.ones(5), 1, "one iteration per plane"),
                                                    (np.full(6, -1.0), 1, ">= 0"),
                                                    (np.full(6, 2.5), 2, "needs 3 iterations but n_iter=2; .* n_iter=3")])
def test_blockwise_bad_chosen(cli_model, tmp_path, chosen, n_iter, match):
    pytest.importorskip("zarr")
    from deepcontrast.models import DeepContrast

    tmp, raw = cli_model
    model = DeepContrast(None, "m", basedir=str(tmp / "models"))
    with pytest.raises(ValueError, match=match):
        model.predict_blockwise(raw, "ZYX", tmp_path / "o.zarr", chosen=chosen, n_iter=n_iter)


def test_nothing_measurable_returns_the_raw():
    """A forward model without depth-dependent blur or haze: every depth explains the raw alike, so the choice would
    follow noise; the raw is returned and the report says why."""
    flat = DeepTissueDegradation(photons=50, blur_rate=0.0, scattering_length=None)
    raw, _ = synthetic_tissue((NZ, N, N), rng=3, degradation=flat)
    sharp = [raw + k * (raw - ndi.gaussian_filter(raw, (0, 1, 1))) for k in (1, 2)]  # iterates that changed
    out, rep = FakeModel(sharp).predict_adaptive(raw, "ZYX", max_iter=2, degradation=flat, voxel_size=VS)
    assert not rep.consistency.measurable
    np.testing.assert_array_equal(rep.chosen, 0.0)
    np.testing.assert_allclose(out, raw, rtol=1e-6)
    assert any("not measurable" in n and "raw is returned" in n for n in rep.notes)


def test_curved_sample_restores_each_plane_below_its_tissue_surface():
    # a spheroid in black medium and ideal iterates (the truth rendered 10, 20, 30 um shallower,
    # never above a voxel's own surface): every iterate is consistent with the raw and within the
    # tissue, so every plane takes all three. With the medium in the comparison and in the planes'
    # depths (most of a plane is medium, depth 0), the surface rule held most planes at ~0
    from deepcontrast.data import synthetic_spheroid
    from deepcontrast.models.adaptive import restore_adaptive

    vs = (2.0, 0.5, 0.5)
    deg = DeepTissueDegradation(photons=50, attenuation_length=60.0, blur_rate=0.05)
    raw, clean, depth = synthetic_spheroid((32, 128, 128), voxel_size=vs, degradation=deg, rng=3)
    quiet = deg.replace(photons=None)
    its = [quiet.render(clean, "ZYX", depth=np.maximum(depth - d, 0), voxel_size=vs) for d in (10, 20, 30)]
    _, rep = restore_adaptive(raw, its, "ZYX", deg, voxel_size=vs, depth=depth)
    tissue = rep.consistency.plane_depth > 0
    assert tissue.sum() == 30 and np.all(rep.chosen[tissue] >= 2.5)
