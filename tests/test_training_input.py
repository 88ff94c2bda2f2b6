"""The training input pipeline: every sample once per pass, seeded order, reproducible training."""
import numpy as np
import pytest

from deepcontrast.models import Config, DeepContrast
from deepcontrast.models.training import batch_indices, training_dataset

TINY = dict(unet_n_depth=2, unet_n_first=4, train_batch_size=4, train_tensorboard=False)


def labelled(n=12, size=16):
    """Sample i is the constant image i (input) and 2 * i (target): a batch tells which samples it holds."""
    X = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, size, size, 1)).copy()
    return X, 2 * X


def test_batch_indices_are_passes_of_permutations():
    idx = batch_indices(10, 4, 10, rng=3)  # 40 indices: 4 passes, batches straddle passes
    assert idx.shape == (10, 4)
    passes = idx.ravel().reshape(4, 10)
    for p in passes:
        np.testing.assert_array_equal(np.sort(p), np.arange(10))
    assert len({tuple(p) for p in passes}) == 4  # a fresh permutation each pass
    np.testing.assert_array_equal(idx, batch_indices(10, 4, 10, rng=3))
    assert not np.array_equal(idx, batch_indices(10, 4, 10, rng=4))


def test_dataset_gives_every_sample_once_per_epoch_in_pairs():
    X, Y = labelled(12)
    batches = list(training_dataset(X, Y, 4, 6, rng=0).as_numpy_iterator())  # 2 epochs of 3 steps
    assert len(batches) == 6
    for x, y in batches:
        assert x.shape == (4, 16, 16, 1) and x.dtype == np.float32
        np.testing.assert_array_equal(y, 2 * x)  # input and target of the same sample
    ids = np.array([x[:, 0, 0, 0] for x, _ in batches]).astype(int)
    for epoch in ids.reshape(2, 12):
        np.testing.assert_array_equal(np.sort(epoch), np.arange(12))


def test_training_feeds_every_sample_once_per_epoch():
    X, Y = labelled(12)
    seen = []

    def augmenter(x, y):  # called once per sample of every batch the network trains on
        seen.append(int(x[0, 0, 0]))
        return x[::-1], y[::-1]  # a flip keeps the pair aligned

    model = DeepContrast(Config("YX", **TINY), basedir=None)
    model.train(X, Y, validation_data=(X[:2], Y[:2]), epochs=2, steps_per_epoch=3, augmenter=augmenter, rng=0)
    np.testing.assert_array_equal(np.bincount(seen, minlength=12), np.full(12, 2))
    assert len(model.history) == 2


def test_tiny_training_is_reproducible_with_the_seed():
    import keras

    rng = np.random.default_rng(0)
    Y = rng.random((16, 16, 16, 1), dtype=np.float32)
    X = 0.5 * Y + 0.1 * rng.random(Y.shape, dtype=np.float32)

    def run(seed):
        keras.utils.set_random_seed(0)  # initial weights
        model = DeepContrast(Config("YX", **TINY), basedir=None)
        model.train(X[:12], Y[:12], validation_data=(X[12:], Y[12:]), epochs=2, steps_per_epoch=3, rng=seed)
        return [h["loss"] for h in model.history], model.keras_model.get_weights()

    (loss_a, w_a), (loss_b, w_b), (loss_c, _) = run(1), run(1), run(2)
    np.testing.assert_array_equal(loss_a, loss_b)
    for a, b in zip(w_a, w_b):
        np.testing.assert_array_equal(a, b)
    assert loss_c != loss_a  # the seed decides the batch order


def test_mismatched_lengths():
    X, Y = labelled(12)
    with pytest.raises(ValueError, match="same number of samples"):
        training_dataset(X, Y[:10], 4, 3)
