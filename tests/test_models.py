"""DeepContrast model: config, save/load, iterative prediction, tiling tolerance, bad input."""
import json

import numpy as np
import pytest

from deepcontrast.models import Config, DeepContrast

TINY = dict(unet_n_depth=2, unet_n_first=8, train_epochs=1, train_steps_per_epoch=3, train_batch_size=4,
            train_tensorboard=False)


def pairs(n=12, size=32, rng=0):
    rng = np.random.default_rng(rng)
    Y = rng.random((n, size, size, 1), dtype=np.float32)
    X = 0.5 * Y + 0.1
    return X, Y


def image(shape=(60, 76), rng=0):
    from scipy import ndimage

    rng = np.random.default_rng(rng)
    img = ndimage.gaussian_filter(rng.random(shape), 1.5) * 400 + 50
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)  # reproducible weights: the tiling tests measure this network
    basedir = tmp_path_factory.mktemp("models")
    model = DeepContrast(Config("YX", **TINY, degradation_settings={"extra_depth": [10, 40]}), "tiny", basedir=basedir)
    X, Y = pairs()
    model.train(X[:9], Y[:9], validation_data=(X[9:], Y[9:]))
    return model


def test_config_defaults_and_extra_keys():
    c = Config("ZYX")
    assert c.train_loss == "mae" and c.degradation_settings is None and c.is_valid()
    assert Config("YX", degradation_settings={"a": 1}).degradation_settings == {"a": 1}


def test_config_from_per_plane_training_data_normalizes_per_plane(tmp_path):
    from csbdeep.io import save_training_data

    X, Y = pairs(4, 16)
    save_training_data(tmp_path / "d.npz", np.moveaxis(X, -1, 1), np.moveaxis(Y, -1, 1), "SCYX")
    (tmp_path / "d.settings.json").write_text(json.dumps({"per_slice": "Z"}))
    assert Config.from_training_data(tmp_path / "d.npz").normalize_per_slice is True
    assert Config.from_training_data(tmp_path / "d.npz", normalize_per_slice=False).normalize_per_slice is False
    (tmp_path / "d.settings.json").write_text(json.dumps({"extra_depth": [10, 40]}))
    assert Config.from_training_data(tmp_path / "d.npz").normalize_per_slice is False


def test_config_rejects_non_dict_settings():
    assert Config("YX", degradation_settings=[1, 2]).is_valid(True) == (False, ("degradation_settings",))


def test_config_rejects_unknown_key():
    with pytest.raises(AttributeError):
        Config("YX", no_such_key=1)


def test_config_from_training_data_reads_settings_side_file(tmp_path):
    from csbdeep.io import save_training_data

    X, Y = pairs(4, 16)
    save_training_data(tmp_path / "d.npz", np.moveaxis(X, -1, 1), np.moveaxis(Y, -1, 1), "SCYX")
    settings = {"degradation": {"attenuation_length": 150.0}, "extra_depth": [10, 40]}
    (tmp_path / "d.settings.json").write_text(json.dumps(settings))
    c = Config.from_training_data(tmp_path / "d.npz", unet_n_depth=1)
    assert c.axes == "YXC" and c.degradation_settings == settings and c.unet_n_depth == 1


def test_model_folder_layout_and_side_file(trained):
    names = {p.name for p in trained.logdir.iterdir()}
    assert {"config.json", "weights_best.h5", "weights_last.h5", "deepcontrast.json"} <= names
    side = json.loads((trained.logdir / "deepcontrast.json").read_text())
    assert side["degradation_settings"] == {"extra_depth": [10, 40]}
    assert len(side["history"]) == 1 and "loss" in side["history"][0]


def test_save_load_gives_identical_predictions(trained):
    img = image()
    loaded = DeepContrast(None, "tiny", basedir=trained.basedir)
    assert loaded.degradation_settings == {"extra_depth": [10, 40]}
    np.testing.assert_array_equal(loaded.predict(img, "YX"), trained.predict(img, "YX"))


def test_predict_n_iter_equals_last_iterate_and_keeps_input(trained):
    img = image()
    before = img.copy()
    its = trained.predict_iterative(img, "YX", 3)
    assert len(its) == 3 and all(i.dtype == np.float32 and i.shape == img.shape for i in its)
    np.testing.assert_array_equal(trained.predict(img, "YX", n_iter=3), its[-1])
    np.testing.assert_array_equal(trained.predict(img, "YX"), its[0])
    np.testing.assert_array_equal(img, before)


def test_iterations_feed_outputs_directly(tmp_path):
    # iteration 2 = the network applied twice in the raw's normalized space, mapped back with the
    # raw's normalization; with a stand-in network that changes the intensity range, re-normalizing
    # in between (predict applied to the output of predict) gives a different answer
    from csbdeep.data import PercentileNormalizer

    model = saved_model(tmp_path)
    def f(t):
        return 0.5 * np.asarray(t) ** 2 + 0.25

    model.keras_model.predict_on_batch = f
    img = image()
    norm = PercentileNormalizer()
    x = norm.before(img[..., None], "YXC")
    expected = norm.after(f(f(x)), None, "YXC")[0][..., 0]
    its = model.predict_iterative(img, "YX", 2, physical=False)  # the bare network (physical: test_physical.py)
    np.testing.assert_allclose(its[1], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    renormalized = model.predict(its[0], "YX", physical=False)
    assert np.abs(renormalized - its[1]).max() > 0.02 * np.abs(expected).max()  # measured: 5%


def test_iterates_share_the_raw_intensity_scale(trained):
    # the percentile normalization of the raw maps every iterate back: scaling the raw by a
    # constant scales every iterate by the same constant (in float32: with 16-bit convolutions the
    # rounding of the two normalized inputs, equal only to float32 precision, can differ in a few voxels)
    img = image()
    a = trained.predict_iterative(img, "YX", 2, precision="float32")
    b = trained.predict_iterative(3 * img, "YX", 2, precision="float32")
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, 3 * x, rtol=1e-4, atol=1e-3 * np.abs(x).max())


@pytest.mark.parametrize("n_tiles,n_iter", [((2, 3), 1), ((4, 4), 1), ((4, 4), 3)])
def test_tiled_within_one_percent_of_untiled(trained, n_tiles, n_iter):
    img = image((128, 120), rng=3)
    full = trained.predict(img, "YX", n_tiles=(1, 1), n_iter=n_iter)
    tiled = trained.predict(img, "YX", n_tiles=n_tiles, n_iter=n_iter)
    assert np.abs(tiled - full).max() <= 0.01 * (full.max() - full.min())


def test_auto_tiling_under_small_memory_budget(trained):
    img = image((128, 120), rng=4)
    full = trained.predict(img, "YX", n_tiles=(1, 1))
    old = trained.config.predict_memory_mb
    trained.config.predict_memory_mb = 0.2
    try:
        auto = trained.predict(img, "YX")
        assert trained._plan((1, 128, 120, 1), None)[0] != (1, 1)
    finally:
        trained.config.predict_memory_mb = old
    assert np.abs(auto - full).max() <= 0.01 * (full.max() - full.min())


def test_2d_model_applies_to_each_plane_of_a_stack(trained):
    stack = np.stack([image(rng=k) for k in range(3)])
    out = trained.predict(stack, "ZYX", normalizer=None)
    assert out.shape == stack.shape
    for k in range(3):
        np.testing.assert_allclose(out[k], trained.predict(stack[k], "YX", normalizer=None), rtol=1e-5, atol=1e-4)


def test_channel_axis_kept(trained):
    img = image()[..., None]
    assert trained.predict(img, "YXC").shape == img.shape


# ----- bad input -----------------------------------------------------------------------------

def test_axes_count_mismatch(trained):
    with pytest.raises(ValueError, match="do not match"):
        trained.predict(image(), "ZYX")


def test_axes_mismatch_model():
    model = DeepContrast(Config("ZYX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False), basedir=None)
    with pytest.raises(ValueError, match="3D model"):
        model.predict(image(), "YX")


def test_image_smaller_than_network(trained):
    with pytest.raises(ValueError, match="at least 4"):
        trained.predict(np.ones((2, 40), np.float32), "YX")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_input(trained, bad):
    img = image()
    img[3, 4] = bad
    with pytest.raises(ValueError, match="NaN/Inf"):
        trained.predict(img, "YX")


@pytest.mark.parametrize("n_iter", [0, -1, 1.5, True])
def test_bad_n_iter(trained, n_iter):
    with pytest.raises(ValueError, match="n_iter"):
        trained.predict(image(), "YX", n_iter=n_iter)


def test_wrong_channel_count(trained):
    with pytest.raises(ValueError, match="channels"):
        trained.predict(np.ones((32, 32, 2), np.float32), "YXC")


def test_bad_n_tiles(trained):
    with pytest.raises(ValueError, match="n_tiles"):
        trained.predict(image(), "YX", n_tiles=(2,))


def test_load_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DeepContrast(None, "nope", basedir=tmp_path)


def test_load_folder_without_config(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        DeepContrast(None, "m", basedir=tmp_path)


def test_load_folder_without_weights(tmp_path):
    DeepContrast(Config("YX", **TINY), "m", basedir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no weights"):
        DeepContrast(None, "m", basedir=tmp_path)


# ----- training ------------------------------------------------------------------------------

def test_interrupted_training_leaves_loadable_weights(tmp_path):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt

    model = DeepContrast(Config("YX", **TINY), "m", basedir=tmp_path)
    model.prepare_for_training()
    model.callbacks.append(Interrupt())
    X, Y = pairs()
    with pytest.raises(KeyboardInterrupt):
        model.train(X[:9], Y[:9], validation_data=(X[9:], Y[9:]))
    assert (tmp_path / "m" / "weights_last.h5").exists()
    loaded = DeepContrast(None, "m", basedir=tmp_path)
    img = image()
    np.testing.assert_array_equal(loaded.predict(img, "YX"), model.predict(img, "YX"))
    side = json.loads((tmp_path / "m" / "deepcontrast.json").read_text())
    assert side["trainings"][-1]["interrupted"] is True


def test_training_continues_from_loaded_model(tmp_path):
    first = DeepContrast(Config("YX", **TINY), "c", basedir=tmp_path)  # its own folder: the shared model stays as trained
    X, Y = pairs()
    first.train(X[:9], Y[:9], validation_data=(X[9:], Y[9:]))
    loaded = DeepContrast(None, "c", basedir=tmp_path)
    w0 = [w.copy() for w in loaded.keras_model.get_weights()]
    X, Y = pairs(rng=1)
    loaded.train(X[:9], Y[:9], validation_data=(X[9:], Y[9:]), epochs=1, steps_per_epoch=2)
    assert any(not np.array_equal(a, b) for a, b in zip(w0, loaded.keras_model.get_weights()))
    assert len(loaded.history) == 2  # the first training's epoch + this one


# ----- the method works --------------------------------------------------------------------

def foreground_contrast(img, mask):
    fg, bg = img[mask].mean(), img[~mask].mean()
    return (fg - bg) / (fg + bg)


def test_short_training_on_synthetic_tissue_raises_deep_contrast(tmp_path):
    import keras

    from deepcontrast.data import DegradedRawData, create_patches, synthetic_tissue
    from deepcontrast.degradation import DeepTissueDegradation

    planes = [synthetic_tissue((128, 128), depth=60, rng=k)[0] for k in range(3)]
    raw_data = DegradedRawData.from_arrays(planes, "YX", DeepTissueDegradation(photons=50), (10, 40),
                                           n_degradations=4, voxel_size=(0.5, 0.5), depth=60, rng=0)
    X, Y, axes = create_patches(raw_data, (32, 32), 32, rng=0)
    X, Y = np.moveaxis(X, 1, -1), np.moveaxis(Y, 1, -1)
    keras.utils.set_random_seed(0)
    config = Config("YX", unet_n_depth=2, unet_n_first=16, train_epochs=4, train_steps_per_epoch=25,
                    train_batch_size=16, train_tensorboard=False)
    model = DeepContrast(config, "syn", basedir=tmp_path)
    n = len(X) * 9 // 10
    model.train(X[:n], Y[:n], validation_data=(X[n:], Y[n:]))

    observed, clean = synthetic_tissue((6, 128, 128), depth=70, rng=7)
    restored = model.predict(observed, "ZYX")  # the 2D model, plane by plane
    mask = clean > np.percentile(clean, 80)
    raw_c = [foreground_contrast(observed[k], mask[k]) for k in range(3, 6)]
    new_c = [foreground_contrast(restored[k], mask[k]) for k in range(3, 6)]
    assert all(n > r for n, r in zip(new_c, raw_c)), (raw_c, new_c)
    # the halo measured on this trained network keeps tiles within 1% of the untiled output
    tiled = model.predict(observed, "ZYX", n_tiles=(1, 3, 3), n_iter=2)
    full = model.predict(observed, "ZYX", n_tiles=(1, 1, 1), n_iter=2)
    assert np.abs(tiled - full).max() <= 0.01 * (full.max() - full.min())


def test_halo_cache_key_changes_with_any_weight(trained):
    from deepcontrast.models.predict import _fingerprint

    km = trained.keras_model
    w0 = km.get_weights()
    i = max(range(len(w0)), key=lambda k: w0[k].size)  # a kernel with far more than 64 values
    try:
        key0 = _fingerprint(km)
        w = [a.copy() for a in w0]
        w[i].ravel()[-1] += 1.0  # a value past the first 64 of the tensor
        km.set_weights(w)
        key1 = _fingerprint(km)
        w = [a.copy() for a in w0]
        w[i].ravel()[[0, 1]] = w[i].ravel()[[1, 0]]  # same sum of the first 64 values
        km.set_weights(w)
        key2 = _fingerprint(km)
    finally:
        km.set_weights(w0)
    assert len({key0, key1, key2}) == 3
    assert _fingerprint(km) == key0


# ----- bad input and faults ------------------------------------------------------------------

def saved_model(basedir, name="m"):
    model = DeepContrast(Config("YX", **TINY), name, basedir=basedir)
    model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
    return model


@pytest.mark.parametrize("which", ["X", "Y", "X_val"])
def test_training_data_with_nan_is_refused(tmp_path, which):
    model = DeepContrast(Config("YX", **TINY), "m", basedir=tmp_path)
    X, Y = pairs()
    data = {"X": X[:9], "Y": Y[:9], "X_val": X[9:], "Y_val": Y[9:]}
    data[which] = data[which].copy()
    data[which][0, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match=f"{which} .*1 NaN/Inf"):
        model.train(data["X"], data["Y"], validation_data=(data["X_val"], data["Y_val"]))


def test_non_finite_loss_stops_training_and_keeps_the_last_finite_weights(tmp_path):
    model = DeepContrast(Config("YX", precision="float32", **TINY), "m", basedir=tmp_path)
    start = model.keras_model.get_weights()
    X, Y = pairs()
    X = np.full_like(X, 3e38)  # overflows the activations: the loss becomes NaN
    with pytest.raises(ValueError, match="loss became .*precision float32.*lower train_learning_rate"):
        model.train(X[:9], Y[:9], validation_data=(X[9:], Y[9:]))
    side = json.loads((tmp_path / "m" / "deepcontrast.json").read_text())
    assert side["trainings"][-1]["diverged"] is True
    # the step diverged in the first epoch: the last weights that passed the guard are the initial ones
    kept = DeepContrast(None, "m", basedir=tmp_path)
    for a, b in zip(kept.keras_model.get_weights(), start):
        np.testing.assert_array_equal(a, b)


def test_nan_weights_are_refused_on_load(tmp_path):
    model = saved_model(tmp_path)
    model.keras_model.set_weights([np.full_like(w, np.nan) for w in model.keras_model.get_weights()])
    model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
    with pytest.raises(ValueError, match="weights_best.h5 .*NaN"):
        DeepContrast(None, "m", basedir=tmp_path)


def test_corrupt_config_json_is_named(tmp_path):
    saved_model(tmp_path)
    (tmp_path / "m" / "config.json").write_text('{"axes": "YX", "n_dim"')
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        DeepContrast(None, "m", basedir=tmp_path)


def test_truncated_weights_are_named(tmp_path):
    saved_model(tmp_path)
    w = tmp_path / "m" / "weights_best.h5"
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(ValueError, match="weights_best.h5"):
        DeepContrast(None, "m", basedir=tmp_path)


def test_unreadable_side_file_is_an_error_and_kept(tmp_path):
    saved_model(tmp_path)
    side = tmp_path / "m" / "deepcontrast.json"
    side.write_text("{garbage")
    with pytest.raises(ValueError, match="deepcontrast.json"):
        DeepContrast(None, "m", basedir=tmp_path)
    assert side.read_text() == "{garbage"


def test_diverging_iterations_stop_with_a_message(tmp_path):
    model = saved_model(tmp_path)
    model.keras_model.predict_on_batch = lambda b: np.asarray(b) * 50.0 + 1.0
    with pytest.raises(ValueError, match="iteration [0-9]+ diverged"):
        model.predict(image(), "YX", n_iter=30)
