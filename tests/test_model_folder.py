"""The model folder's settings: ``config.json`` holds the network, ``deepcontrast.json`` the rest.

CSBDeep's ``CARE`` must load a folder DeepContrast trained, and its network must compute what
DeepContrast's float32 network computes. Both run the same float32 weights through the same
TF kernels, so the outputs agree to float32 rounding (tolerance 1e-5 of the output's range).
"""
import json
import shutil

import numpy as np
import pytest

from csbdeep.data import NoResizer, PercentileNormalizer
from csbdeep.models import CARE
from csbdeep.models import Config as CSBDeepConfig
from csbdeep.utils import normalize

from deepcontrast.models import Config, DeepContrast
from deepcontrast.models.config import EXTRA_DEFAULTS, split_config

#: every deepcontrast setting away from its default
SETTINGS = dict(degradation_settings={"degradation": {"background": 20.0, "attenuation_length": 150.0},
                                      "extra_depth": [10, 40], "per_slice": "Z"},
                predict_memory_mb=123.5, normalize_per_slice=True, precision="bfloat16")
NET = dict(unet_n_depth=1, unet_n_first=4, train_epochs=2, train_steps_per_epoch=2, train_batch_size=4,
           train_tensorboard=False)

#: what a folder without deepcontrast's settings loads with: normalize_per_slice False (its network
#: was trained on whole-image normalized data), the other defaults as they are
LOADED_DEFAULTS = {**EXTRA_DEFAULTS, "normalize_per_slice": False}


def image(shape=(40, 52), rng=0):
    from scipy import ndimage

    rng = np.random.default_rng(rng)
    return (ndimage.gaussian_filter(rng.random(shape), 1.5) * 400 + 50).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained by DeepContrast (2 epochs of 2 steps, bfloat16) with every setting changed."""
    import keras

    keras.utils.set_random_seed(1)
    basedir = tmp_path_factory.mktemp("folder")
    model = DeepContrast(Config("YX", **NET, **SETTINGS), "m", basedir=basedir)
    rng = np.random.default_rng(0)
    Y = rng.random((12, 32, 32, 1), dtype=np.float32)
    model.train(0.5 * Y[:9] + 0.1, Y[:9], validation_data=(0.5 * Y[9:] + 0.1, Y[9:]))
    return model


def read(folder, name):
    return json.loads((folder / name).read_text())


def copy_folder(model, tmp_path):
    shutil.copytree(model.logdir, tmp_path / "m")
    return tmp_path / "m"


def test_config_json_holds_exactly_csbdeeps_keys(trained):
    network = read(trained.logdir, "config.json")
    assert set(network) == set(vars(CSBDeepConfig("YX")))
    side = read(trained.logdir, "deepcontrast.json")
    assert {k: side[k] for k in EXTRA_DEFAULTS} == SETTINGS
    assert len(side["history"]) == 2 and side["trainings"] == [{"interrupted": False, "epochs": 2, "precision": SETTINGS["precision"]}]


def test_csbdeep_care_loads_the_folder_and_computes_the_same(trained):
    care = CARE(None, "m", basedir=str(trained.basedir))
    assert json.loads(json.dumps(vars(care.config))) == read(trained.logdir, "config.json")
    x = normalize(image(), 2, 99.8)[None, ..., None]
    y_care = care.keras_model.predict(x, verbose=0)
    y_ours = trained._net_for("float32").predict(x, verbose=0)
    tol = 1e-5 * np.ptp(y_ours)
    np.testing.assert_allclose(y_care, y_ours, rtol=0, atol=tol)
    # and through predict: the bare network (no physical floor/balance), same normalizer, float32
    img, norm = image(rng=1), PercentileNormalizer(2, 99.8)
    np.testing.assert_allclose(care.predict(img, "YX", normalizer=norm, resizer=NoResizer()),
                               trained.predict(img, "YX", normalizer=norm, resizer=NoResizer(), physical=False,
                                               precision="float32"), rtol=0, atol=1e-5 * np.ptp(img))


def loaded_as(model):
    """What a model's config holds after a save and load: the settings and config.json as written.

    (CSBDeep's training adds ``verbose`` to ``train_reduce_lr`` in memory after config.json was
    written, and JSON has lists where the Config has tuples.)
    """
    return read(model.logdir, "config.json"), split_config(model.config)[1]


def test_save_load_keeps_every_setting_history_and_predictions(trained):
    loaded = DeepContrast(None, "m", basedir=trained.basedir)
    assert split_config(loaded.config) == loaded_as(trained)
    assert split_config(loaded.config)[1] == SETTINGS
    assert loaded.history == trained.history and len(loaded.history) == 2
    assert loaded.precision == "bfloat16" and loaded.background == 20.0
    img = np.stack([image(rng=2), 3 * image(rng=2)])
    np.testing.assert_array_equal(loaded.predict(img, "ZYX"), trained.predict(img, "ZYX"))


def write_old_layout(folder):
    """Rewrite ``folder`` the way deepcontrast wrote model folders before the split.

    ``config.json`` then held every key of the Config; ``deepcontrast.json`` the version, a copy
    of ``degradation_settings``, the history and the trainings.
    """
    network, side = read(folder, "config.json"), read(folder, "deepcontrast.json")
    settings = {k: side.pop(k) for k in EXTRA_DEFAULTS}
    (folder / "config.json").write_text(json.dumps({**network, **settings}, indent=4))
    old_side = {"history": side["history"], "trainings": side["trainings"], "deepcontrast_version": "0.1.0",
                "degradation_settings": settings["degradation_settings"]}
    (folder / "deepcontrast.json").write_text(json.dumps(old_side, indent=2))


def test_old_layout_loads_the_same_and_is_not_rewritten(trained, tmp_path):
    folder = copy_folder(trained, tmp_path)
    write_old_layout(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    old = DeepContrast(None, "m", basedir=tmp_path)
    assert split_config(old.config) == loaded_as(trained)
    assert old.history == trained.history and old.precision == "bfloat16"
    img = np.stack([image(rng=3), 2 * image(rng=3)])
    np.testing.assert_array_equal(old.predict(img, "ZYX"), trained.predict(img, "ZYX"))
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    # CSBDeep's CARE cannot read the old layout (the reason for the split)
    with pytest.raises(AttributeError, match="degradation_settings"):
        CARE(None, "m", basedir=str(tmp_path))


def test_old_layout_is_written_anew_on_the_next_save(trained, tmp_path):
    folder = copy_folder(trained, tmp_path)
    write_old_layout(folder)
    old = DeepContrast(None, "m", basedir=tmp_path)
    new_settings = {**SETTINGS["degradation_settings"], "extra_depth": [5, 20]}
    old.degradation_settings = new_settings
    assert set(read(folder, "config.json")) == set(vars(CSBDeepConfig("YX")))
    side = read(folder, "deepcontrast.json")
    assert side["degradation_settings"] == new_settings and side["precision"] == "bfloat16"
    again = DeepContrast(None, "m", basedir=tmp_path)
    network, settings = loaded_as(trained)
    assert split_config(again.config) == (network, {**settings, "degradation_settings": new_settings})
    assert again.history == trained.history
    CARE(None, "m", basedir=str(tmp_path))  # loadable by CSBDeep now


def test_old_layout_without_later_keys_gets_their_defaults(trained, tmp_path):
    # a folder from before predict_memory_mb/normalize_per_slice/precision existed
    folder = copy_folder(trained, tmp_path)
    write_old_layout(folder)
    network = read(folder, "config.json")
    for k in ("predict_memory_mb", "normalize_per_slice", "precision"):
        del network[k]
    (folder / "config.json").write_text(json.dumps(network))
    old = DeepContrast(None, "m", basedir=tmp_path)
    assert {k: getattr(old.config, k) for k in EXTRA_DEFAULTS} == {
        **LOADED_DEFAULTS, "degradation_settings": SETTINGS["degradation_settings"]}


def test_invalid_setting_in_side_file_names_both_files(trained, tmp_path):
    folder = copy_folder(trained, tmp_path)
    side = read(folder, "deepcontrast.json")
    (folder / "deepcontrast.json").write_text(json.dumps({**side, "precision": "float8"}))
    with pytest.raises(ValueError, match=r"precision.*deepcontrast\.json|deepcontrast\.json.*precision"):
        DeepContrast(None, "m", basedir=tmp_path)


def test_new_config_replaces_history_and_settings_of_the_folder(trained, tmp_path):
    copy_folder(trained, tmp_path)
    fresh = DeepContrast(Config("YX", **NET), "m", basedir=tmp_path)
    side = read(tmp_path / "m", "deepcontrast.json")
    assert side["history"] == [] and "trainings" not in side
    assert {k: side[k] for k in EXTRA_DEFAULTS} == LOADED_DEFAULTS  # a 2D net without settings: whole
    assert set(read(tmp_path / "m", "config.json")) == set(vars(CSBDeepConfig("YX")))
    assert fresh.history == []


def test_csbdeep_care_folder_loads_with_default_settings_and_is_not_written(tmp_path):
    import keras

    keras.utils.set_random_seed(2)
    care = CARE(CSBDeepConfig("YX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False), "c", basedir=str(tmp_path))
    care.keras_model.save_weights(str(care.logdir / "weights_best.h5"))
    before = {p.name: p.read_bytes() for p in care.logdir.iterdir()}
    ours = DeepContrast(None, "c", basedir=tmp_path)
    assert {p.name: p.read_bytes() for p in care.logdir.iterdir()} == before  # no deepcontrast.json written
    assert split_config(ours.config) == (read(care.logdir, "config.json"), LOADED_DEFAULTS)
    assert ours.history == []
    x = normalize(image(), 2, 99.8)[None, ..., None]
    y_care = care.keras_model.predict(x, verbose=0)
    np.testing.assert_allclose(ours._net_for("float32").predict(x, verbose=0), y_care, rtol=0,
                               atol=1e-5 * np.ptp(y_care))
