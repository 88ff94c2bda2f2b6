"""DeepContrast: a CSBDeep CARE model that trains on degraded raw data and predicts iteratively."""
import json
import logging
import warnings
from pathlib import Path

import numpy as np
from csbdeep.models import CARE

from ..internals.checks import check_finite
from ..internals.model_folder import (CONFIG_FILE, SIDE_FILE, check_model_folder, read_model_files, weight_files,
                                      write_model_files)
from ..version import __version__
from .config import EXTRA_DEFAULTS, Config, _tensorboard_available, split_config
from .adaptive import AdaptiveMixin
from .blockwise import BlockwiseMixin
from .physical import model_background
from .precision import model_precision, resolve_precision, training_optimizer, with_precision
from .predict import PredictMixin
from .guard import TrainingDiverged, make_training_guard
from .training import fit_care

logger = logging.getLogger(__name__)

__all__ = ["DeepContrast", "SIDE_FILE"]


class DeepContrast(AdaptiveMixin, BlockwiseMixin, PredictMixin, CARE):
    """CARE network that restores contrast of deep-tissue fluorescence images.

    Trained on pairs (raw images pushed deeper by the forward model -> raw images) and applied
    to the raw images themselves, once or iteratively (:meth:`predict_iterative`). Saves and
    loads like every CSBDeep model: ``basedir/name/{config.json, weights_best.h5,
    weights_last.h5, logs/}``, plus ``deepcontrast.json``. ``config.json`` holds the network
    (CSBDeep's keys only, so ``csbdeep.models.CARE(None, name, basedir)`` loads the folder);
    ``deepcontrast.json`` holds the settings of :class:`Config` that CSBDeep does not know
    (``degradation_settings``, ``predict_memory_mb``, ``normalize_per_slice``, ``precision``),
    the training history and the trainings. Folders written by earlier versions, with those
    settings in ``config.json``, load the same; the files are rewritten in the current layout
    only when the model saves its state (training, setting ``degradation_settings``).

    GPU: TensorFlow places the network on the first visible GPU as usual and runs on CPU when
    there is none. To share a GPU, call ``csbdeep.utils.tf.limit_gpu_memory(fraction=0.5,
    allow_growth=True)`` (or set ``CUDA_VISIBLE_DEVICES``) before the first model is created.

    Parameters
    ----------
    config : Config or None
        Network configuration; ``None`` loads ``config.json`` and the weights from
        ``basedir/name``. A config starts a new model: an existing ``deepcontrast.json`` in
        the folder is replaced (its history and trainings belong to the old network).
    name : str or None
        Model name (folder name); a timestamp when ``None``.
    basedir : str, Path or None
        Folder holding the model folder; ``None`` keeps everything in memory.

    Raises
    ------
    FileNotFoundError
        Loading (``config=None``) a folder that does not exist, has no ``config.json`` or
        no weights.
    ValueError
        An invalid configuration.

    Examples
    --------
    >>> model = DeepContrast(Config('YX', train_epochs=10), 'my_model', basedir='models')  # doctest: +SKIP
    >>> model.train(X, Y, validation_data=(X_val, Y_val))                                 # doctest: +SKIP
    >>> restored = model.predict(img, 'YX', n_iter=2)                                     # doctest: +SKIP
    >>> model = DeepContrast(None, 'my_model', basedir='models')                          # doctest: +SKIP
    """

    def __init__(self, config, name=None, basedir="."):
        if config is None and basedir is not None and name is not None:
            check_model_folder(Path(basedir) / name)
        # history and trainings; a new network starts without those of an earlier model in its folder
        self._side = {"history": []}
        self._old_layout = False
        super().__init__(config, name=name, basedir=basedir)
        self._halo_cache = {}

    def _set_logdir(self):
        """Load the configuration from (``config=None``) or save it to the model folder.

        CSBDeep's ``_set_logdir`` with the split layout: ``config.json`` (network) plus the
        settings of ``deepcontrast.json`` make the :class:`Config`.
        """
        if self.basedir is None:
            return
        self.logdir = self.basedir / self.name
        if self.config is not None:
            if self.logdir.exists():
                warnings.warn(f"output path for model already exists, files may be overwritten: "
                              f"{self.logdir.resolve()}")
            self._save_side(network=True)
            return
        network, settings, self._side, self._old_layout = read_model_files(self.logdir, EXTRA_DEFAULTS)
        if self._old_layout:
            logger.info("%s keeps deepcontrast's settings in config.json (earlier layout); they move to %s "
                        "when the model next saves", self.logdir, SIDE_FILE)
        self._side.setdefault("history", [])
        # folders written before per-plane normalization could be decided from the data settings
        # were normalized whole unless they said so
        settings.setdefault("normalize_per_slice", False)
        try:
            self.config = self._config_class(**self._config_class.update_loaded_config(network), **settings)
        except (AttributeError, TypeError, ValueError) as e:
            raise ValueError(f"model config {self.logdir / CONFIG_FILE} cannot be loaded ({e}); "
                             "is it a DeepContrast/CSBDeep CARE model folder?") from None
        ok, invalid = self.config.is_valid(True)
        if not ok:
            raise ValueError(f"invalid values in {self.logdir / CONFIG_FILE} or {self.logdir / SIDE_FILE}: "
                             f"{', '.join(invalid)}; restore the files or train the model anew")

    @property
    def _config_class(self):
        return Config

    def _build(self):
        """CSBDeep's U-Net in the precision of ``config.precision`` (head and weights float32)."""
        precision = resolve_precision(getattr(self.config, "precision", "auto"), self.config.n_dim)
        return with_precision(super()._build(), precision)

    @property
    def precision(self):
        """str: the precision the network trains in, ``config.precision`` resolved ('auto' decided)."""
        return model_precision(self.keras_model)

    # ----- state in the model folder -------------------------------------------------------

    @property
    def background(self):
        """float: intensity of no light (camera offset) of the training data, 0 when unknown.

        The floor of physical iterates (:meth:`predict` with ``physical=True``) when no
        ``background`` is given.
        """
        return model_background(self.degradation_settings)

    @property
    def degradation_settings(self):
        """dict or None: settings of the data the model was (or will be) trained on."""
        return self.config.degradation_settings

    @degradation_settings.setter
    def degradation_settings(self, settings):
        if settings is not None:
            try:
                json.dumps(settings)
            except (TypeError, ValueError) as e:
                raise ValueError(f"degradation_settings must be a JSON-serializable dict ({e})") from None
            if not isinstance(settings, dict):
                raise ValueError(f"degradation_settings must be a dict or None, got {type(settings).__name__}")
        self.config.degradation_settings = settings
        self._save_side()

    @property
    def history(self):
        """list of dict: per-epoch training logs (loss, val_loss, ...) over all trainings."""
        return list(self._side.get("history", []))

    def _save_side(self, network=False):
        """Write ``deepcontrast.json`` (settings from ``self.config``, history, trainings).

        ``config.json`` is written too with ``network`` or while the folder is in the old layout
        (settings in ``config.json``), which this replaces.
        """
        if self.basedir is None:
            return
        net, settings = split_config(self.config)
        side = {"deepcontrast_version": __version__, **settings,
                **{k: v for k, v in self._side.items() if k not in settings and k != "deepcontrast_version"}}
        write_model_files(self.logdir, network=net if network or self._old_layout else None, side=side)
        self._old_layout = False

    def _find_and_load_weights(self, prefer="best"):
        if self.basedir is None:
            return
        files = [f for f in weight_files(self.logdir) if f.name != self.config.train_checkpoint_epoch]
        if not files:
            warnings.warn(f"no network weights (*.h5) in {self.logdir}")
            return
        chosen = next((f for f in files if prefer in f.name), files[0])
        logger.info("loading network weights from %s", chosen)
        try:
            self.load_weights(chosen.name)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot load network weights {chosen} ({type(e).__name__}: {e}); the file is "
                             "corrupt or truncated: delete it (another weights file is used) or retrain") from None
        n_bad = sum(int(np.size(w) - np.count_nonzero(np.isfinite(w))) for w in self.keras_model.get_weights())
        if n_bad:
            raise ValueError(f"network weights {chosen} hold {n_bad} NaN/Inf values (the training diverged); "
                             "retrain the model (check the training data and train_learning_rate)")

    # ----- training ------------------------------------------------------------------------

    def prepare_for_training(self, optimizer=None, **kwargs):
        """Compile the network and create the callbacks; see :meth:`csbdeep.models.CARE.prepare_for_training`.

        TensorBoard logging is switched off (with a warning) when ``tensorboard`` is not installed.
        In float16 precision the optimizer is wrapped in dynamic loss scaling
        (``keras.optimizers.LossScaleOptimizer``).
        """
        if self.config.train_tensorboard and not _tensorboard_available():
            warnings.warn("tensorboard is not installed; training without TensorBoard logs (pip install tensorboard)")
            self.config.train_tensorboard = False
        if optimizer is None:
            from keras.optimizers import Adam

            optimizer = Adam(learning_rate=self.config.train_learning_rate)
        optimizer = training_optimizer(optimizer, self.precision)
        super().prepare_for_training(optimizer=optimizer, **kwargs)
        self.callbacks.append(_HistoryCallback(self))
        self.callbacks.insert(0, make_training_guard())

    def train(self, X, Y, validation_data, epochs=None, steps_per_epoch=None, augmenter=None, *, rng=None):
        """Train the network (from its current weights, so a loaded model continues training).

        As :meth:`csbdeep.models.CARE.train`, with the batches fed through a prefetched
        ``tf.data`` pipeline (:func:`deepcontrast.models.training.training_dataset`: every
        sample once per pass over the data, in a seeded order). Keras shows a progress bar per epoch. The best
        (``weights_best.h5``) and last (``weights_last.h5``) weights are saved in the model
        folder, and each epoch's logs are appended to ``deepcontrast.json``.

        Interrupting the training (Ctrl-C, ``KeyboardInterrupt``) saves ``weights_last.h5``
        at once, records the interruption in ``deepcontrast.json`` and re-raises the
        ``KeyboardInterrupt``: the model in memory keeps its current weights and the folder can
        be loaded with ``DeepContrast(None, name, basedir)``.

        A guard (:mod:`deepcontrast.models.guard`) checks the loss after every step and the
        weights after the first steps and at every epoch end, and catches NaN/Inf as well as
        blow-ups (a loss 1000x the first step's, weights beyond 1e5). When it trips with
        ``precision='auto'`` in a 16-bit precision, the training restarts in float32 from the
        initial weights (logged as a warning naming the cause; the model's precision becomes
        ``'float32'``). Otherwise training stops with a ValueError naming the cause, the
        precision and the fix, and the model (in memory and ``weights_last.h5``) keeps the last
        weights that passed the check.

        Parameters
        ----------
        X, Y : numpy.ndarray
            Inputs (degraded raw) and targets (raw), axes ``'S' + config.axes``.
        validation_data : tuple of numpy.ndarray
            ``(X_val, Y_val)``.
        epochs, steps_per_epoch : int or None
            Override the config values.
        augmenter : callable or None
            As in CSBDeep: ``augmenter(x, y) -> (x, y)`` for each sample of a batch.
        rng : int, numpy.random.Generator or None
            Seed of the batch order (``None``: fresh entropy). The initial weights follow
            Keras's seed (``keras.utils.set_random_seed``), as in CSBDeep.

        Returns
        -------
        keras.callbacks.History

        Raises
        ------
        KeyboardInterrupt
            After saving the weights, when the training was interrupted.
        ValueError
            Shapes that do not fit the network (from csbdeep), non-finite training data, or a
            training that diverged (see above).
        """
        for name, arr in zip(("X", "Y", "X_val", "Y_val"), (X, Y) + tuple(validation_data)):
            check_finite(arr, f"training data {name}")
        start, n_history = self.keras_model.get_weights(), len(self._side.get("history", []))
        kw = dict(epochs=epochs, steps_per_epoch=steps_per_epoch, augmenter=augmenter, rng=rng)
        try:
            history = self._fit(X, Y, validation_data, **kw)
        except TrainingDiverged as e:
            if self.config.precision != "auto" or self.precision == "float32":
                self._diverged(e)
            logger.warning("training in %s (precision 'auto') stopped: %s; restarting it in float32 from the initial "
                           "weights (the model's precision is now 'float32')", self.precision, e)
            self._restart_in_float32(start, n_history)
            try:
                history = self._fit(X, Y, validation_data, **kw)
            except TrainingDiverged as e:
                self._diverged(e)
        self._side.setdefault("trainings", []).append({"interrupted": False, "epochs": len(history.epoch),
                                                       "precision": self.precision})
        self._save_side()
        return history

    def _fit(self, X, Y, validation_data, **kw):
        """:func:`fit_care` with the guard; Ctrl-C keeps the current weights (see :meth:`train`)."""
        self._halo_cache.clear()
        try:
            return fit_care(self, X, Y, validation_data, **kw)
        except KeyboardInterrupt:
            if self.basedir is not None:
                self.keras_model.save_weights(str(self.logdir / self.config.train_checkpoint_last))
                self._remove_epoch_checkpoint()
                self._side.setdefault("trainings", []).append({"interrupted": True})
                self._save_side()
                logger.warning("training interrupted; saved the current weights to %s",
                               self.logdir / self.config.train_checkpoint_last)
            raise
        finally:
            self._halo_cache.clear()

    def _guard(self):
        return next((cb for cb in getattr(self, "callbacks", None) or [] if hasattr(cb, "last_good")), None)

    def _restart_in_float32(self, start, n_history):
        """Rebuild the network in float32 with the weights ``start`` and forget the diverged epochs."""
        self.config.precision = "float32"
        old, self.keras_model = self.keras_model, with_precision(self.keras_model, "float32")
        patched = vars(old).get("save_weights")  # CSBDeep's legacy-h5 save_weights, bound to the old network
        if patched is not None:
            self.keras_model.save_weights = patched.__func__.__get__(self.keras_model)
        self.keras_model.set_weights(start)
        self._side["history"] = self._side.get("history", [])[:n_history]
        self._side.setdefault("trainings", []).append({"interrupted": True, "diverged": True,
                                                       "restarted_in": "float32"})
        self._model_prepared = False
        self._remove_epoch_checkpoint()
        self._save_side()

    def _diverged(self, error):
        """Keep the last weights that passed the guard (in memory and as weights_last.h5), then raise."""
        guard = self._guard()
        if guard is not None and guard.last_good is not None:
            self.keras_model.set_weights(guard.last_good)
        self._remove_epoch_checkpoint()
        kept = ""
        if self.basedir is not None:
            self.keras_model.save_weights(str(self.logdir / self.config.train_checkpoint_last))
            kept = f"; the last finite weights are in {self.logdir / self.config.train_checkpoint_last}"
        self._side.setdefault("trainings", []).append({"interrupted": True, "diverged": True, "cause": str(error)})
        self._save_side()
        if self.precision != "float32":
            fix = (f"the network trained in {self.precision}: train with Config(precision='float32'), or "
                   "precision='auto', which restarts in float32 by itself")
        else:
            fix = "check the training data (value range, normalization) or lower train_learning_rate"
        raise ValueError(f"training stopped: {error} (precision {self.precision}){kept}. Fix: {fix}") from None

    def _remove_epoch_checkpoint(self):
        tmp = self.logdir / str(self.config.train_checkpoint_epoch) if self.basedir is not None else None
        if self.config.train_checkpoint_epoch and tmp is not None and tmp.exists():
            tmp.unlink()

    # ----- export (implemented in deepcontrast.export) -----------------------------------

    def export_TF(self, fname=None):
        """Export for the Fiji CSBDeep plugin (TF 1.x-loadable SavedModel zip).

        Delegates to :func:`deepcontrast.export.fiji.export_fiji`.

        Parameters
        ----------
        fname : str, Path or None
            Zip file to write; ``None`` writes ``TF_SavedModel.zip`` in the model folder.

        Returns
        -------
        Path
        """
        from ..export.fiji import export_fiji

        return export_fiji(self, fname)

    def export_bioimageio(self, path, *, name=None, description=None, authors=None,
                          license="BSD-3-Clause", cite=None, input_sample=None):
        """Export as a bioimage.io model package.

        Delegates to :func:`deepcontrast.export.bioimageio.export_bioimageio`; see there for
        the parameters.

        Returns
        -------
        Path
        """
        from ..export.bioimageio import export_bioimageio

        return export_bioimageio(self, path, name=name, description=description, authors=authors,
                                 license=license, cite=cite, input_sample=input_sample)

    def _repr_extra(self):
        return f"├─ Degradation settings: {'yes' if self.degradation_settings else 'none'}\n"


def _make_history_callback():
    from csbdeep.utils.tf import keras_import

    Callback = keras_import("callbacks", "Callback")

    class HistoryCallback(Callback):
        def __init__(self, owner):
            super().__init__()
            self.owner = owner

        def on_epoch_end(self, epoch, logs=None):
            entry = {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v) or np.ndim(v) == 0}
            self.owner._side.setdefault("history", []).append(entry)
            self.owner._save_side()

    return HistoryCallback


def _HistoryCallback(owner):
    """Keras callback appending each epoch's logs to ``deepcontrast.json``."""
    return _make_history_callback()(owner)
