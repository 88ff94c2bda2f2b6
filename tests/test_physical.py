"""Physical iterates: floor at the background, light kept per sample (closed-form properties)."""
import numpy as np
import pytest
from csbdeep.data import NoNormalizer, PercentileNormalizer

from deepcontrast.models import Config, DeepContrast, SlicePercentileNormalizer
from deepcontrast.models.physical import model_background, normalized_background, physical_step

TINY = dict(unet_n_depth=2, unet_n_first=8, train_epochs=1, train_steps_per_epoch=3, train_batch_size=4,
            train_tensorboard=False)


def test_physical_step_floors_and_keeps_light_per_sample():
    rng = np.random.default_rng(0)
    x = rng.random((3, 16, 16, 1)).astype(np.float32) * np.array([1, 5, 20], np.float32)[:, None, None, None]
    y = (x + rng.normal(0, 2, x.shape)).astype(np.float32)  # undershoot and changed light
    floor = np.array([0.1, -0.5, 2.0], np.float32)[:, None, None, None]
    out = physical_step(x, y, floor)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.all(out >= floor)
    np.testing.assert_allclose((out - floor).sum(axis=(1, 2, 3)), (x - floor).sum(axis=(1, 2, 3)), rtol=1e-5)
    # where nothing is floored, the step is a pure scale of the light above the floor
    keep = (y >= floor).all(axis=(1, 2, 3))
    for k in np.flatnonzero(keep):
        ratio = (out[k] - floor[k]) / (y[k] - floor[k])
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)


def test_physical_step_keeps_the_light_of_each_z_plane_of_a_volume():
    rng = np.random.default_rng(4)
    x = (rng.random((1, 5, 8, 8, 1)) * np.arange(1, 6)[None, :, None, None, None]).astype(np.float32)
    y = np.roll(x, 1, axis=1) * 0.7  # light moved between planes and lost
    out = physical_step(x, y, 0.0, axis=(2, 3))
    np.testing.assert_allclose(out.sum(axis=(2, 3)), x.sum(axis=(2, 3)), rtol=1e-5)
    whole = physical_step(x, y, 0.0)  # per volume: the planes keep the moved light
    assert not np.allclose(whole.sum(axis=(2, 3)), x.sum(axis=(2, 3)), rtol=1e-2)


def test_physical_step_is_identity_on_a_physical_fixed_point():
    x = np.random.default_rng(1).random((2, 8, 8, 1)).astype(np.float32) + 1
    np.testing.assert_allclose(physical_step(x, x.copy(), 0.5), x, rtol=1e-6)


def test_physical_step_only_floors_a_sample_without_light():
    x = np.full((1, 4, 4, 1), 3.0, np.float32)
    y = np.array([[-1.0, 5.0], [2.0, 4.0]], np.float32).reshape(1, 2, 2, 1)
    out = physical_step(x[:, :2, :2], y, 3.0)  # no light above the floor in x: nothing to conserve
    np.testing.assert_array_equal(out[0, ..., 0], [[3.0, 5.0], [3.0, 4.0]])


def test_physical_step_caps_the_light_balance(caplog):
    from deepcontrast.models.physical import MAX_LIGHT_RATIO

    x = np.ones((2, 4, 4, 1), np.float32)
    y = np.concatenate([x[:1] * 0.01, x[1:] * 0.5])  # sample 0 lost 99% of its light, sample 1 half
    out = physical_step(x, y, 0.0)
    np.testing.assert_allclose(out[0], 0.01 * MAX_LIGHT_RATIO, rtol=1e-6)  # capped, not 100x
    np.testing.assert_allclose(out[1], 1.0, rtol=1e-6)  # balanced
    assert "capped" in caplog.text and "1 of 2 sample" in caplog.text


@pytest.mark.parametrize("normalizer", [PercentileNormalizer(), SlicePercentileNormalizer(pmin=1, pmax=99)])
def test_normalized_background_maps_back_to_the_background(normalizer):
    rng = np.random.default_rng(2)
    x = (rng.random((3, 20, 20, 1)) * np.array([10, 100, 1000])[:, None, None, None] + 7).astype(np.float32)
    normalizer.before(x, "SYXC")
    floor = normalized_background(normalizer, 5.0, 3, "SYXC", 1)
    assert floor.shape == (3, 1, 1, 1)
    back, _ = normalizer.after(floor, None, "SYXC")
    np.testing.assert_allclose(back, 5.0, rtol=1e-5)


def test_normalized_background_without_mapping_back_is_none():
    assert normalized_background(NoNormalizer(), 0.0, 1, "SYXC", 1) is None


def test_model_background_from_settings():
    assert model_background({"degradation": {"background": 100.0}}) == 100.0
    assert model_background(None) == 0.0
    assert model_background({"degradation": {"background": None}}) == 0.0


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(0)
    Y = rng.random((12, 32, 32, 1), dtype=np.float32)
    X = 0.5 * Y + 0.1
    m = DeepContrast(Config("YX", **TINY), "tiny", basedir=tmp_path_factory.mktemp("m"))
    m.train(X[:9], Y[:9], validation_data=(X[9:], Y[9:]))
    return m


def dim_stack():
    from deepcontrast import DeepTissueDegradation
    from deepcontrast.data import synthetic_tissue

    # deepest planes at a few expected photons: Poisson noise dominates
    observed, _ = synthetic_tissue((4, 64, 64), degradation=DeepTissueDegradation(photons=8), depth=60, rng=3)
    return observed


def test_iterates_never_go_below_background_and_keep_each_planes_light(model):
    img = dim_stack()
    its = model.predict_iterative(img, "ZYX", 3)
    for it in its:
        assert it.min() >= 0.0
        np.testing.assert_allclose(it.sum(axis=(1, 2)), img.sum(axis=(1, 2)), rtol=2e-4)


def test_background_offset_is_the_floor(model):
    img = dim_stack() + np.float32(100)
    its = model.predict_iterative(img, "ZYX", 2, background=100.0)
    for it in its:
        assert it.min() >= 100.0 - 1e-3
        np.testing.assert_allclose((it - 100).sum(axis=(1, 2)), (img - 100).sum(axis=(1, 2)), rtol=1e-3)


def test_physical_false_is_the_bare_network(model):
    img = dim_stack()
    bare = model.predict(img, "ZYX", physical=False, normalizer=PercentileNormalizer())
    n = PercentileNormalizer()
    x = n.before(img[:, :, :, None], "SYXC")
    y = model.keras_model.predict_on_batch(x)
    expected, _ = n.after(np.asarray(y), None, "SYXC")
    np.testing.assert_allclose(bare, expected[..., 0], rtol=1e-4, atol=1e-4 * float(np.ptp(expected)))
    assert not np.allclose(bare.sum(axis=(1, 2)), img.sum(axis=(1, 2)), rtol=1e-3)


def test_background_must_be_finite(model):
    with pytest.raises(ValueError, match="background must be a finite number"):
        model.predict(dim_stack(), "ZYX", background=float("nan"))


def test_iter_predict_yields_the_iterates_one_pass_at_a_time(model, monkeypatch):
    img = dim_stack()
    expected = model.predict_iterative(img, "ZYX", 3)
    calls = []
    step = model._net_step
    monkeypatch.setattr(model, "_net_step", lambda *a, **k: calls.append(1) or step(*a, **k))
    gen = model.iter_predict(img, "ZYX", 3)
    first = next(gen)
    assert len(calls) == 1
    rest = list(gen)
    assert len(calls) == 3
    for a, b in zip([first] + rest, expected):
        np.testing.assert_array_equal(a, b)
