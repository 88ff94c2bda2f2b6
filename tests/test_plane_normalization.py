"""Every plane normalized on its own: training stacks (DegradedRawData) and 3D prediction."""
import json

import numpy as np
import pytest

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import DegradedRawData, SlicePercentileNormalizer, create_patches, load_settings
from deepcontrast.data.normalize import normalize_planes
from deepcontrast.models import Config, DeepContrast
from deepcontrast.models.config import planes_normalized


def _dimming_stack(rng=0):
    """A stack whose planes differ in scale and offset (as attenuation with depth does)."""
    g = np.random.default_rng(rng)
    base = g.random((6, 24, 24)).astype(np.float32)
    return base * np.linspace(100, 10, 6, dtype=np.float32)[:, None, None] + 5


def test_normalize_planes_maps_each_plane_and_is_affine_invariant():
    stack = _dimming_stack()
    y = normalize_planes(stack, "ZYX")
    lo, hi = np.percentile(y, (2, 99.8), axis=(1, 2))
    np.testing.assert_allclose(lo, 0, atol=1e-5)
    np.testing.assert_allclose(hi, 1, atol=1e-5)
    # a plane's own affine change of scale and offset does not change its normalized values
    np.testing.assert_allclose(normalize_planes(3 * stack - 7, "ZYX"), y, atol=1e-5)
    assert not normalize_planes(np.full((2, 4, 4), 3.0), "ZYX").any()  # constant planes: 0, no NaN
    with pytest.raises(ValueError, match="Y and X"):
        normalize_planes(stack, "ZYT")


def test_slice_normalizer_takes_every_z_plane_of_a_3d_input_on_its_own():
    stack = _dimming_stack()
    n = SlicePercentileNormalizer(pmin=2, pmax=99.8)
    x = n.before(stack[None, ..., None], "SZYXC")
    np.testing.assert_allclose(x[0, ..., 0], normalize_planes(stack, "ZYX"), atol=1e-5)
    back, _ = n.after(x, None, "SZYXC")
    np.testing.assert_allclose(back[0, ..., 0], stack, rtol=1e-5, atol=1e-4)


def test_degraded_raw_data_normalizes_planes_of_stacks_by_default():
    stack = _dimming_stack()
    deg = DeepTissueDegradation(photons=50)
    on = DegradedRawData.from_arrays(stack, "ZYX", deg, 20.0, rng=0)
    off = DegradedRawData.from_arrays(stack, "ZYX", deg, 20.0, rng=0, normalize_planes=False)
    (x1, y1, _, _), = list(on.generator())
    (x0, y0, _, _), = list(off.generator())
    np.testing.assert_array_equal(y0, stack)  # off: the raw target as it was
    np.testing.assert_allclose(x1, normalize_planes(x0, "ZYX"), atol=1e-6)  # same degradation, then normalized
    np.testing.assert_allclose(y1, normalize_planes(stack, "ZYX"), atol=1e-6)
    assert on.settings["normalize_planes"] is True and off.settings["normalize_planes"] is False
    plane = DegradedRawData.from_arrays(stack[0], "YX", deg, 20.0, rng=0)
    assert plane.settings["normalize_planes"] is False  # nothing to do without Z
    with pytest.raises(ValueError, match="normalize_planes must be True or False"):
        DegradedRawData.from_arrays(stack, "ZYX", deg, 20.0, normalize_planes="yes")


def test_model_normalizes_as_its_training_data_were_made(tmp_path):
    stack = _dimming_stack()
    raw = DegradedRawData.from_arrays(stack, "ZYX", DeepTissueDegradation(photons=50), 20.0, rng=0)
    create_patches(raw, (4, 16, 16), 2, save_file=tmp_path / "d.npz", verbose=False, rng=0)
    assert Config.from_training_data(tmp_path / "d.npz").normalize_per_slice is True
    stack_wide = DegradedRawData.from_arrays(stack, "ZYX", DeepTissueDegradation(photons=50), 20.0, rng=0,
                                             normalize_planes=False)
    assert Config("ZYX", degradation_settings=stack_wide.settings).normalize_per_slice is False
    # without settings: 3D networks as DegradedRawData makes 3D data, 2D networks whole
    assert Config("ZYX").normalize_per_slice is True and Config("YX").normalize_per_slice is False
    assert Config("ZYX", normalize_per_slice=False).normalize_per_slice is False
    # an npz without a settings file was not made by DegradedRawData: normalized whole (CSBDeep's way)
    load_settings(tmp_path / "d.npz")
    (tmp_path / "d.settings.json").unlink()
    assert Config.from_training_data(tmp_path / "d.npz").normalize_per_slice is False
    assert planes_normalized({"axes": "ZYX"}, 3) is False  # settings written before the option: whole


def test_model_folder_without_the_setting_loads_as_normalized_whole(tmp_path):
    model = DeepContrast(Config("ZYX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False), "m", basedir=tmp_path)
    assert model.config.normalize_per_slice is True
    model.keras_model.save_weights(str(tmp_path / "m" / "weights_best.h5"))
    side = tmp_path / "m" / "deepcontrast.json"
    data = json.loads(side.read_text())
    del data["normalize_per_slice"]
    side.write_text(json.dumps(data))
    assert DeepContrast(None, "m", basedir=tmp_path).config.normalize_per_slice is False


def test_3d_per_plane_model_on_a_stack_the_network_pads_keeps_each_planes_light():
    # 6 planes, padded to 8 for a U-Net of depth 2: the per-plane floor is padded like the input
    import keras

    keras.utils.set_random_seed(0)
    model = DeepContrast(Config("ZYX", unet_n_depth=2, unet_n_first=4, train_tensorboard=False), basedir=None)
    stack = _dimming_stack()
    iterates = model.predict_iterative(stack, "ZYX", 2)
    for y in iterates:
        assert y.shape == stack.shape and y.min() >= -1e-4  # nothing below the background (0)
        np.testing.assert_allclose(y.sum(axis=(1, 2)), stack.sum(axis=(1, 2)), rtol=1e-3)
