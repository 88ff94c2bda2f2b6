"""Issue 20 part 3 (but napari) and part 5: the evaluation shows what each iteration restored according to the raw
data (restored depth and chi2 per third), suggests by the data-consistency rule, and says when no restoration
happened. Known answers: iterates rendered from the clean truth at known shallower depths (as test_consistency)."""
import json

import numpy as np
import pytest

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import synthetic_tissue
from deepcontrast.evaluate import evaluate_iterates, format_table
from deepcontrast.metrics import suggest_n_iter
from deepcontrast.plot import plot_iterations

VS = (2.0, 0.5, 0.5)
DEG = DeepTissueDegradation(photons=50)
NZ = 24


def _shallower(clean, d0):
    """The clean truth rendered (without noise) d0 um shallower than each plane's depth."""
    z = VS[0] * np.arange(len(clean))
    dm = np.broadcast_to(np.maximum(z - d0, 0)[:, None, None], clean.shape).copy()
    return DEG.replace(photons=None).render(clean, "ZYX", depth=dm, voxel_size=VS)


@pytest.fixture(scope="module")
def rendered():
    raw, clean = synthetic_tissue((NZ, 96, 96), rng=3, degradation=DEG, voxel_size=VS)
    its = [_shallower(clean, 10.0), _shallower(clean, 20.0)]
    rep = evaluate_iterates(raw, its, "ZYX", voxel_size=VS, degradation=DEG.to_dict())
    return raw, its, rep


def test_report_holds_restored_depth_and_chi2_per_third(rendered):
    _, _, rep = rendered
    json.dumps(rep, allow_nan=False)
    cons = rep["consistency"]
    table = {(r["iteration"], r["region"]): r for r in cons["table"]}
    assert {g for _, g in table} == {"shallow", "middle", "deep"}
    # rendered 10 and 20 um shallower: the deep third is restored by about that much; in 3D the forward model's
    # axial blur composes only approximately, a bias of ~3 um (see test_consistency)
    assert 10.0 <= table[(1, "deep")]["restored_depth"] <= 10.0 + 5.0
    assert 20.0 <= table[(2, "deep")]["restored_depth"] <= 20.0 + 5.0
    assert table[(1, "deep")]["restored_depth"] < table[(2, "deep")]["restored_depth"]
    assert all(0.85 < r["chi2"] < 1.15 for r in cons["table"])
    assert np.shape(cons["restored_depth"]) == np.shape(cons["chi2"]) == (2, NZ)
    assert cons["no_restoration"] is False and rep["no_restoration"] is False


def test_suggestion_follows_the_data_consistency_rule(rendered):
    _, _, rep = rendered
    # both renders stay consistent (chi2 ~ 1) and within each plane's depth: every plane but the shallowest takes 2
    assert rep["suggested_by"] == "data consistency" and rep["suggested_n_iter"] == 2
    assert rep["suggestions"]["data_consistency"] == 2 and rep["suggestions"]["image_statistics"] >= 1
    assert "data consistency" in rep["suggestion_rule"]
    table = format_table(rep)
    assert "data consistency" in table and "deep" in table and "shallow" in table
    assert "suggested n_iter: 2  (by data consistency" in table


def test_iterates_equal_to_the_raw_restore_nothing_and_suggest_nothing(rendered, caplog):
    raw, _, _ = rendered
    rep = evaluate_iterates(raw, [raw.copy(), raw.copy()], "ZYX", voxel_size=VS, degradation=DEG)
    assert rep["no_restoration"] is True and rep["suggested_n_iter"] is None
    assert rep["suggested_by"] == "no restoration"
    table = format_table(rep)
    assert "no restoration happened" in table and "suggested n_iter" not in table
    assert "no restoration happened" in caplog.text


def test_a_forward_model_without_depth_dependence_says_no_restoration(rendered):
    raw, its, _ = rendered
    flat = DEG.replace(blur_rate=0.0, scattering_length=None)
    rep = evaluate_iterates(raw, its, "ZYX", voxel_size=VS, degradation=flat)
    assert rep["consistency"]["measurable"] is False and rep["no_restoration"] is True
    assert any("not measurable" in t for t in rep["consistency"]["notes"])
    assert "no restoration happened" in format_table(rep)


def test_without_a_degradation_the_image_statistics_rule_chooses(rendered):
    raw, its, _ = rendered
    rep = evaluate_iterates(raw, its, "ZYX", voxel_size=VS)
    assert rep["consistency"] is None and rep["suggested_by"] == "image statistics"
    assert "data consistency" not in format_table(rep)


def test_the_check_runs_on_a_bounded_central_crop():
    from deepcontrast.evaluate.consistency import consistency_section

    raw, clean = synthetic_tissue((6, 80, 64), rng=1, degradation=DEG, voxel_size=VS)
    rep, sec = consistency_section(raw, [clean], "ZYX", DEG, voxel_size=VS, max_side=32)
    assert sec["crop"] == {"Y": [24, 56], "X": [16, 48]}
    assert rep.inputs["shape"] == [6, 32, 32]
    _, whole = consistency_section(raw, [clean], "ZYX", DEG, voxel_size=VS, max_side=None)
    assert whole["crop"] is None
    _, skipped = consistency_section(raw[None], [clean[None]], "CZYX", DEG, voxel_size=VS)
    assert "skipped" in skipped


def test_a_curved_sample_is_checked_with_its_depth_map():
    # a spheroid and its truth rendered 10 um shallower: with the map the check compares each plane
    # on its tissue (chi2 ~ 1, planes at their tissue's depth), also on a crop of the map
    from deepcontrast.data import synthetic_spheroid

    deg = DeepTissueDegradation(photons=50, attenuation_length=60.0, blur_rate=0.05)
    raw, clean, depth = synthetic_spheroid((32, 128, 128), voxel_size=VS, degradation=deg, rng=3)
    it = deg.replace(photons=None).render(clean, "ZYX", depth=np.maximum(depth - 10, 0), voxel_size=VS)
    rep = evaluate_iterates(raw, [it], "ZYX", voxel_size=VS, degradation=deg, depth=depth)
    assert rep["depth"] == "map"
    cons = rep["consistency"]
    assert all(0.85 < r["chi2"] < 1.15 for r in cons["table"])
    assert cons["plane_depth"][20] == pytest.approx(np.median(depth[20][depth[20] > 0]), rel=1e-5)
    from deepcontrast.evaluate.consistency import consistency_section

    _, sec = consistency_section(raw, [it], "ZYX", deg, voxel_size=VS, depth=depth, max_side=64)
    inner = depth[20, 32:96, 32:96]
    assert sec["crop"] == {"Y": [32, 96], "X": [32, 96]}
    assert sec["plane_depth"][20] == pytest.approx(np.median(inner[inner > 0]), rel=1e-5)


def test_suggest_n_iter_known_answers():
    t = [dict(contrast_gain=1, detail_retention=1), dict(contrast_gain=1.5, detail_retention=.99),
         dict(contrast_gain=1.8, detail_retention=.98), dict(contrast_gain=2, detail_retention=.9)]
    ones = [[1.0, 1.0]] * 3
    cons = dict(restored_depth=[[5.0, 5.0], [10.0, 10.0], [15.0, 15.0]], chi2=ones, plane_depth=[20.0, 30.0])
    n, why = suggest_n_iter(t, consistency=cons, explain=True)
    assert (n, why["rule"], why["image_statistics"], why["data_consistency"]) == (3, "data consistency", 2, 3)
    # at 12 um (limit 12 um) iteration 3 (15 um) restores past it: 2; with a margin of 5 um all three pass
    assert suggest_n_iter(t, consistency=dict(cons, plane_depth=[12.0, 12.0])) == 2
    # at the surface even iteration 1 (5 um) restores past it: no iteration is supported, at least 1 is suggested
    assert suggest_n_iter(t, consistency=dict(cons, plane_depth=[0.0, 0.0])) == 1
    # chi2 of iteration 2 grows 50% over iteration 1's: half-way from 1 to 2 is the limit (1.2), so 1.4 -> 1
    grow = [[1.0, 1.0], [1.5, 1.5], [1.5, 1.5]]
    assert suggest_n_iter(t, consistency=dict(cons, chi2=grow)) == 1
    # no depth resolved but the iterates raised contrast: the check could not resolve it, image statistics choose
    n, why = suggest_n_iter(t, consistency=dict(cons, restored_depth=[[0.3, 0.1]] * 3), explain=True)
    assert (n, why["rule"]) == (2, "image statistics") and "resolved no restored depth" in why["note"]
    same = [t[0]] + [dict(contrast_gain=1.0, detail_retention=1.0)] * 3  # iterates equal to the raw
    n, why = suggest_n_iter(same, consistency=dict(cons, restored_depth=[[0.3, 0.1]] * 3), explain=True)
    assert (n, why["rule"]) == (0, "no restoration")
    assert suggest_n_iter(t, consistency=dict(cons, measurable=False)) == 0
    assert suggest_n_iter(t) == 2 and suggest_n_iter(t, explain=True)[1]["rule"] == "image statistics"


def test_suggest_n_iter_refuses_a_consistency_of_other_iterates():
    t = [dict(contrast_gain=1, detail_retention=1), dict(contrast_gain=1.5, detail_retention=.99)]
    with pytest.raises(ValueError, match="1 iterate"):
        suggest_n_iter(t, consistency=dict(restored_depth=[[1.0], [2.0]], chi2=[[1.0], [1.0]], plane_depth=[5.0]))


def test_plot_iterations_shows_restored_depth_and_chi2_per_third(rendered):
    raw, its, rep = rendered
    fig = plot_iterations(raw, its, "ZYX", consistency=rep["consistency"]["table"])
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert "restored" not in titles[0]
    for k in (1, 2):
        rows = [r for r in rep["consistency"]["table"] if r["iteration"] == k]
        depths = "/".join(format(r["restored_depth"], ".2g") for r in rows)
        assert f"restored {depths} um" in titles[k]
        assert "(s/m/d)" in titles[k]
