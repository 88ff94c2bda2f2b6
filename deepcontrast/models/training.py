"""Training input pipeline: shuffled batches of in-memory arrays through ``tf.data``, prefetched.

CSBDeep's ``CARE.train`` feeds Keras a Python generator (``DataWrapper``) whose shuffling reads
NumPy's global random state. Here the batch order is drawn up front from a seeded generator
(the same rolling semantics: consecutive passes over the data, each a fresh permutation, cut
into batches that may straddle two passes), and ``tf.data`` gathers the batches in a background
thread and prefetches them, so no training step waits on data.
"""
import warnings

import numpy as np

__all__ = ["batch_indices", "training_dataset", "fit_care"]


def batch_indices(n, batch_size, n_batches, rng=None):
    """Sample indices of ``n_batches`` batches: passes over ``range(n)``, each a fresh permutation.

    Every sample appears once in each pass; with ``batch_size * steps_per_epoch == n`` a pass
    is one epoch.

    Parameters
    ----------
    n, batch_size, n_batches : int
        Number of samples, samples per batch, batches.
    rng : int, numpy.random.Generator or None
        Seed of the permutations (``None``: fresh entropy; pass a seed for a reproducible order).

    Returns
    -------
    numpy.ndarray
        ``(n_batches, batch_size)`` int64.
    """
    if n < 1 or batch_size < 1 or n_batches < 1:
        raise ValueError(f"need at least one sample, batch and batch element, got n={n}, "
                         f"batch_size={batch_size}, n_batches={n_batches}")
    g = np.random.default_rng(rng)
    total = n_batches * batch_size
    idx = np.concatenate([g.permutation(n) for _ in range(-(-total // n))])
    return idx[:total].reshape(n_batches, batch_size)


def training_dataset(X, Y, batch_size, n_batches, rng=None, augmenter=None):
    """``tf.data.Dataset`` of ``n_batches`` batches ``(X[i], Y[i])`` in :func:`batch_indices` order.

    The arrays stay in memory as they are (no copy, no size limit); each batch is gathered (and
    augmented, per sample as in CSBDeep: ``augmenter(x, y) -> (x, y)``) in a ``tf.data`` thread
    and prefetched.

    Parameters
    ----------
    X, Y : numpy.ndarray
        Inputs and targets, samples along the first axis.
    batch_size, n_batches : int
        Samples per batch, batches (``epochs * steps_per_epoch``).
    rng : int, numpy.random.Generator or None
        Seed of the order, see :func:`batch_indices`.
    augmenter : callable or None
        Applied to each sample of a batch; it may change the spatial size, not rank or channels.

    Returns
    -------
    tf.data.Dataset
    """
    import tensorflow as tf

    if len(X) != len(Y):
        raise ValueError(f"X and Y must hold the same number of samples, got {len(X)} and {len(Y)}")
    idx = batch_indices(len(X), batch_size, n_batches, rng)
    dtypes = (X.dtype, Y.dtype)

    def gather(i):
        x, y = X[i], Y[i]
        if augmenter is not None:
            x, y = zip(*(augmenter(a, b) for a, b in zip(x, y)))
            x, y = np.stack(x), np.stack(y)
        return np.asarray(x, dtypes[0]), np.asarray(y, dtypes[1])

    def shaped(i):
        x, y = tf.numpy_function(gather, [i], [tf.as_dtype(d) for d in dtypes], stateful=False)
        for t, a in ((x, X), (y, Y)):  # augmenters may change the spatial size, never rank or channels
            t.set_shape((batch_size,) + ((a.shape[1:]) if augmenter is None else (None,) * (a.ndim - 2) + a.shape[-1:]))
        return x, y

    return tf.data.Dataset.from_tensor_slices(idx).map(shaped).prefetch(tf.data.AUTOTUNE)


def fit_care(model, X, Y, validation_data, epochs=None, steps_per_epoch=None, augmenter=None, rng=None):
    """:meth:`csbdeep.models.CARE.train` with the batches from :func:`training_dataset`.

    Same checks, callbacks (TensorBoard images included), validation and checkpoints as CSBDeep.

    Parameters
    ----------
    model : csbdeep.models.CARE
        The model to train (``DeepContrast.train`` calls this).
    X, Y, validation_data, epochs, steps_per_epoch, augmenter
        As in :meth:`csbdeep.models.CARE.train`.
    rng : int, numpy.random.Generator or None
        Seed of the batch order, see :func:`batch_indices`.

    Returns
    -------
    keras.callbacks.History
    """
    from csbdeep.utils import axes_check_and_normalize, axes_dict

    if not (isinstance(validation_data, (list, tuple)) and len(validation_data) == 2):
        raise ValueError("validation_data must be a pair of numpy arrays (X_val, Y_val)")
    frac_val = len(validation_data[0]) / (len(X) + len(validation_data[0]))
    if frac_val < 0.05:
        warnings.warn(f"small number of validation images (only {100 * frac_val:.1f}% of all images)")
    axes = axes_check_and_normalize("S" + model.config.axes, X.ndim)
    ax = axes_dict(axes)
    for a, div_by in zip(axes, model._axes_div_by(axes)):
        if X.shape[ax[a]] % div_by:
            raise ValueError(f"training images must be evenly divisible by {div_by} along axis {a} "
                             f"(which has incompatible size {X.shape[ax[a]]})")
    epochs = model.config.train_epochs if epochs is None else int(epochs)
    steps_per_epoch = model.config.train_steps_per_epoch if steps_per_epoch is None else int(steps_per_epoch)
    if not model._model_prepared:
        model.prepare_for_training()
    _add_tensorboard_images(model, validation_data)
    data = training_dataset(X, Y, model.config.train_batch_size, epochs * steps_per_epoch, rng, augmenter)
    history = model.keras_model.fit(data, validation_data=validation_data, epochs=epochs,
                                    steps_per_epoch=steps_per_epoch, callbacks=model.callbacks, verbose=1,
                                    shuffle=False)  # the order is the dataset's
    model._training_finished()
    return history


def _add_tensorboard_images(model, validation_data):
    """CSBDeep's TensorBoard image callback, once, when logging to a model folder."""
    from csbdeep.utils.tf import CARETensorBoardImage

    if (model.config.train_tensorboard and model.basedir is not None
            and not any(isinstance(cb, CARETensorBoardImage) for cb in model.callbacks)):
        model.callbacks.append(CARETensorBoardImage(model=model.keras_model, data=validation_data,
                                                    log_dir=str(model.logdir / "logs" / "images"),
                                                    n_images=3, prob_out=model.config.probabilistic))
