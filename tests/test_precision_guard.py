"""16-bit kernels checked on the machine at hand, float32 gradients where they are wrong, and the
training guard.

Known answers: the kernel self-test compares with float32 on 16-bit-representable data (right
kernels: max relative error <= 0.05 measured, TOLERANCE 0.25); a broken kernel is simulated by
replacing the 16-bit result with NaN or with values off by 1e38 (what TensorFlow 2.21's oneDNN
bfloat16 Conv3DBackpropFilterV2 returned on CPUs with AVX-512 BF16). The float32-gradient layer
must give exactly the float32 gradient of the 16-bit inputs. The guard is tripped by a loss that
returns NaN (or a blow-up) at a known step.
"""
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from deepcontrast.models import Config, DeepContrast
from deepcontrast.models import guard as G
from deepcontrast.models import kernels as K
from deepcontrast.models import precision as P


@pytest.fixture
def fresh_kernel_cache(monkeypatch):
    monkeypatch.setattr(K, "_CACHE", {})


def broken(monkeypatch, kernel="filter gradient", value=np.nan):
    """Make the 16-bit ``kernel`` of the self-test return ``value`` in a third of its entries."""
    real = K._errors
    index = K.KERNELS.index(kernel)

    def errors(x, w, dy, dtype):
        out = real(x, w, dy, dtype)
        if dtype != tf.float32:
            bad = out[index].copy()
            bad.flat[::3] = value
            out[index] = bad
        return out

    monkeypatch.setattr(K, "_errors", errors)


def right(monkeypatch):
    """Make the self-test's 16-bit kernels right on any machine: the float32 result rounded to bfloat16.

    (This CPU's own bfloat16 3D filter gradient may be wrong at some shapes: TensorFlow 2.21's
    oneDNN kernel gives NaN on a CPU with AMX at input (2, 4, 32, 32, 256), 3x3x3 -> 128.)
    """
    real = K._errors

    def errors(x, w, dy, dtype):
        if dtype == tf.float32:
            return real(x, w, dy, dtype)
        return [np.asarray(tf.cast(tf.cast(r, tf.bfloat16), tf.float32)) for r in real(x, w, dy, tf.float32)]

    monkeypatch.setattr(K, "_errors", errors)


def claim_bf16_cpu(monkeypatch):
    monkeypatch.setattr(P, "probe_hardware", lambda: {"gpus": [], "cpu_bf16": True})


@pytest.mark.parametrize("n_dim", [2, 3])
def test_self_test_of_this_machine_is_consistent(fresh_kernel_cache, n_dim):
    # whether this machine's kernels are right is what the test measures; its verdict must follow
    # its own figures, and the forward convolution (right on every machine measured) computed in bf16
    result = K.check_kernels("bfloat16", n_dim)
    assert set(result) == set(K.KERNELS)
    within = all(np.isfinite(e) and e <= K.TOLERANCE for e in result.values())
    assert result.ok == within == (not result.failed)
    assert result.forward_ok and 0 < result["forward"] <= 0.1  # bf16 rounding, not zero: it computed in bf16


def test_right_kernels_pass_the_self_test(fresh_kernel_cache, monkeypatch):
    right(monkeypatch)
    for n_dim in (2, 3):
        result = K.check_kernels("bfloat16", n_dim)
        assert result.ok and not result.failed and all(0 < e <= 0.01 for e in result.values())


@pytest.mark.parametrize("value,what", [(np.nan, "NaN/Inf"), (3e38, "max rel. error")])
def test_broken_gradient_kernel_is_found_and_named(fresh_kernel_cache, monkeypatch, value, what):
    broken(monkeypatch, "filter gradient", value)
    result = K.check_kernels("bfloat16", 3)
    assert not result.ok and result.forward_ok
    assert result.failed and all(f.startswith("filter gradient at input (") for f in result.failed)
    assert what in str(result) and "WRONG" in str(result)


def test_auto_picks_float32_where_the_kernels_fail(fresh_kernel_cache, monkeypatch, caplog):
    claim_bf16_cpu(monkeypatch)
    right(monkeypatch)
    assert P.resolve_precision("auto", 3) == "bfloat16"  # right kernels: the hardware's choice
    K._CACHE.clear()
    broken(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=P.__name__):
        assert P.resolve_precision("auto", 3) == "float32"
    assert "float32, although the CPU has AVX-512 BF16" in caplog.text and "filter gradient" in caplog.text
    model = DeepContrast(Config("ZYX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False), "m", basedir=None)
    assert model.precision == "float32"


def test_explicit_bf16_with_broken_gradients_uses_float32_gradient_layers(fresh_kernel_cache, monkeypatch):
    broken(monkeypatch)
    keras.utils.set_random_seed(0)
    config = Config("ZYX", unet_n_depth=2, unet_n_first=4, train_tensorboard=False, precision="bfloat16",
                    train_epochs=2, train_steps_per_epoch=3, train_batch_size=2, train_learning_rate=0.003)
    model = DeepContrast(config, "m", basedir=None)
    convs = [la for la in model.keras_model.layers if isinstance(la, keras.layers.Conv3D)]
    body = [la for la in convs if la.dtype_policy.compute_dtype == "bfloat16"]
    assert body and all(type(la).__name__ == "Conv3DFloat32Gradients" for la in body)
    assert all(type(la) is keras.layers.Conv3D for la in convs if la not in body)  # the float32 head
    # exports and float32 predictions use the plain Keras layers
    f32 = P.with_precision(model.keras_model, "float32")
    assert all(type(la) is keras.layers.Conv3D for la in f32.layers if isinstance(la, keras.layers.Conv3D))
    rng = np.random.default_rng(0)
    Y = rng.random((8, 4, 16, 16, 1), dtype=np.float32)
    history = model.train(0.5 * Y, Y, validation_data=(0.5 * Y[:2], Y[:2]), rng=0)
    assert all(np.isfinite(w).all() for w in model.keras_model.get_weights())
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_broken_forward_kernel_refuses_explicit_bf16(fresh_kernel_cache, monkeypatch):
    broken(monkeypatch, "forward")
    with pytest.raises(ValueError, match="computes wrong convolutions on this machine.*precision='float32'"):
        DeepContrast(Config("YX", unet_n_depth=1, unet_n_first=4, precision="bfloat16"), "m", basedir=None)


@pytest.mark.parametrize("n_dim", [2, 3])
def test_float32_gradient_layer_gives_the_float32_gradient_of_the_16bit_inputs(n_dim):
    base = keras.layers.Conv3D if n_dim == 3 else keras.layers.Conv2D
    cls = K.float32_gradient_layer(base)
    assert K.float32_gradient_layer(base) is cls and K.float32_gradient_layer(cls) is cls
    layer = cls(8, 3, padding="same", dtype="mixed_bfloat16")
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((2,) + (8,) * n_dim + (4,)).astype(np.float32))
    layer.build(x.shape)
    dy = tf.cast(tf.constant(rng.standard_normal((2,) + (8,) * n_dim + (8,)).astype(np.float32)), tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    assert y.dtype == tf.bfloat16
    gx, gk = tape.gradient(y, [x, layer.kernel], output_gradients=dy)
    # reference: float32 convolution of the bfloat16-rounded input and kernel, same output gradient
    xb, kb = (tf.cast(tf.cast(t, tf.bfloat16), tf.float32) for t in (x, layer.kernel.value))
    with tf.GradientTape() as tape:
        tape.watch([xb, kb])
        conv = tf.nn.conv3d if n_dim == 3 else tf.nn.conv2d
        yr = conv(xb, kb, strides=[1] * (n_dim + 2), padding="SAME")
    rx, rk = tape.gradient(yr, [xb, kb], output_gradients=tf.cast(dy, tf.float32))
    # the kernel gradient arrives as bfloat16 (cast back) before the cast to the float32 variable
    np.testing.assert_allclose(gk.numpy(), tf.cast(tf.cast(rk, tf.bfloat16), tf.float32).numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(gx.numpy(), tf.cast(tf.cast(rx, tf.bfloat16), tf.float32).numpy(), rtol=0, atol=0)
    assert layer.get_config() == base(8, 3, padding="same", dtype="mixed_bfloat16", name=layer.name).get_config()


# ----- the matrix: every precision, 2D/3D, depth and width trains with finite weights ----------

@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("axes", ["YX", "ZYX"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("width", [4, 8])
def test_precision_dims_depth_width_matrix_trains(precision, axes, depth, width):
    keras.utils.set_random_seed(0)
    config = Config(axes, unet_n_depth=depth, unet_n_first=width, train_tensorboard=False, precision=precision,
                    train_epochs=3, train_steps_per_epoch=3, train_batch_size=4, train_learning_rate=0.003)
    model = DeepContrast(config, "m", basedir=None)
    rng = np.random.default_rng(0)
    shape = (16, 32, 32) if axes == "YX" else (16, 8, 16, 16)
    Y = rng.random(shape + (1,), dtype=np.float32)
    history = model.train(0.5 * Y, Y, validation_data=(0.5 * Y[:4], Y[:4]), rng=0)
    assert model.precision == precision
    assert all(np.isfinite(w).all() for w in model.keras_model.get_weights())
    assert history.history["loss"][-1] < history.history["loss"][0]


# ----- the guard --------------------------------------------------------------------------------

def poison_loss(monkeypatch, at_step=2, value=float("nan")):
    """CSBDeep's MAE loss, replaced by ``value`` at training step ``at_step`` (1-based, over all trainings)."""
    from csbdeep.internals import train

    poisoned = tf.Variable(False, trainable=False)
    real = train.loss_mae

    def loss_mae(mean=True):
        mae = real(mean)
        return lambda y_true, y_pred: tf.where(poisoned, tf.cast(value, y_pred.dtype), mae(y_true, y_pred))

    class Poison(keras.callbacks.Callback):
        step = 0

        def on_train_batch_begin(self, batch, logs=None):
            Poison.step += 1
            poisoned.assign(Poison.step == at_step)

        def on_test_begin(self, logs=None):
            poisoned.assign(False)

    prepare = DeepContrast.prepare_for_training

    def prepare_with_poison(self, *args, **kwargs):
        prepare(self, *args, **kwargs)
        self.callbacks.append(Poison())

    monkeypatch.setattr(train, "loss_mae", loss_mae)
    monkeypatch.setattr(DeepContrast, "prepare_for_training", prepare_with_poison)


def guard_data():
    Y = np.random.default_rng(0).random((12, 32, 32, 1), dtype=np.float32)
    return 0.5 * Y, Y


def guarded(tmp_path, precision, epochs=2):
    keras.utils.set_random_seed(0)
    config = Config("YX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False, precision=precision,
                    train_epochs=epochs, train_steps_per_epoch=3, train_batch_size=4)
    return DeepContrast(config, "m", basedir=tmp_path)


def test_auto_restarts_in_float32_from_the_initial_weights(tmp_path, monkeypatch, caplog):
    claim_bf16_cpu(monkeypatch)
    model = guarded(tmp_path, "auto")
    assert model.precision == "bfloat16"
    start = model.keras_model.get_weights()
    poison_loss(monkeypatch, at_step=2)
    X, Y = guard_data()
    with caplog.at_level(logging.WARNING):
        history = model.train(X[:10], Y[:10], validation_data=(X[10:], Y[10:]), rng=0)
    assert "training in bfloat16 (precision 'auto') stopped: the loss became nan at step 2 (epoch 1)" in caplog.text
    assert "restarting it in float32 from the initial weights" in caplog.text
    assert model.precision == "float32" and model.config.precision == "float32"
    assert len(history.epoch) == 2 and all(np.isfinite(w).all() for w in model.keras_model.get_weights())
    side = json.loads((tmp_path / "m" / "deepcontrast.json").read_text())
    assert side["precision"] == "float32" and len(side["history"]) == 2  # the diverged epoch is not in it
    assert side["trainings"] == [{"interrupted": True, "diverged": True, "restarted_in": "float32"},
                                 {"interrupted": False, "epochs": 2, "precision": "float32"}]
    # restarted from the initial weights: the same as an untouched float32 training with the same order
    keras.utils.set_random_seed(0)
    ref = DeepContrast(Config("YX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False, precision="float32",
                              train_epochs=2, train_steps_per_epoch=3, train_batch_size=4), "ref", basedir=None)
    ref.keras_model.set_weights(start)
    ref_history = ref.train(X[:10], Y[:10], validation_data=(X[10:], Y[10:]), rng=0)
    np.testing.assert_allclose(history.history["loss"], ref_history.history["loss"], rtol=1e-5)
    loaded = DeepContrast(None, "m", basedir=tmp_path)
    assert loaded.precision == "float32"


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_explicit_precision_stops_with_the_fix_and_keeps_finite_weights(tmp_path, monkeypatch, precision):
    model = guarded(tmp_path, precision, epochs=3)
    poison_loss(monkeypatch, at_step=5)  # epoch 2 (3 steps per epoch)
    X, Y = guard_data()
    fix = "Config\\(precision='float32'\\)" if precision == "bfloat16" else "lower train_learning_rate"
    with pytest.raises(ValueError, match=f"loss became nan at step 5 \\(epoch 2\\) \\(precision {precision}\\).*{fix}"):
        model.train(X[:10], Y[:10], validation_data=(X[10:], Y[10:]), rng=0)
    side = json.loads((tmp_path / "m" / "deepcontrast.json").read_text())
    assert len(side["history"]) == 1 and side["trainings"][-1]["diverged"] is True
    assert not (tmp_path / "m" / "weights_now.h5").exists()
    kept = model.keras_model.get_weights()
    loaded = DeepContrast(None, "m", basedir=tmp_path)  # weights_best.h5 of epoch 1
    for a, b in zip(loaded.keras_model.get_weights(), kept):
        np.testing.assert_array_equal(a, b)
    last = DeepContrast(None, "m", basedir=tmp_path)
    last.load_weights("weights_last.h5")
    assert all(np.isfinite(w).all() for w in last.keras_model.get_weights())


def test_blow_up_without_nan_trips_the_guard(tmp_path, monkeypatch):
    model = guarded(tmp_path, "float32")
    poison_loss(monkeypatch, at_step=3, value=1e12)
    X, Y = guard_data()
    with pytest.raises(ValueError, match="the loss blew up to .* at step 3 \\(epoch 1\\)"):
        model.train(X[:10], Y[:10], validation_data=(X[10:], Y[10:]), rng=0)


def test_absurd_weights_are_named():
    assert G.weights_problem([np.ones(3), np.zeros((2, 2))]) is None
    assert "2 network weights became NaN/Inf" == G.weights_problem([np.array([np.nan, 1, np.inf])])
    assert "reached 3e+38" in G.weights_problem([np.array([1.0, -3e38])])
