"""Configuration of a DeepContrast network: csbdeep's ``Config`` plus the data settings."""
import importlib.util
import json
from pathlib import Path

from csbdeep.models import Config as _CSBDeepConfig

from ..data.settings import load_settings, settings_path
from ..internals.files import to_jsonable
from .precision import PRECISIONS

__all__ = ["Config", "load_settings", "planes_normalized", "settings_path", "split_config"]

#: keys this subclass adds to csbdeep's configuration, with their defaults; the model folder keeps
#: them in deepcontrast.json, not in config.json (which CSBDeep's CARE loads)
EXTRA_DEFAULTS = {
    # settings of the data generation (forward model, extra depth, ...), see DegradedRawData.settings
    "degradation_settings": None,
    # memory (MiB) one prediction call may use when ``n_tiles=None`` picks the tiling
    "predict_memory_mb": 2048,
    # normalize each YX plane on its own percentiles at prediction (training stacks normalized per
    # plane, see DegradedRawData(normalize_planes=True) and deepcontrast.data.per_slice); None:
    # decided from degradation_settings by planes_normalized()
    "normalize_per_slice": None,
    # numerical precision of training and (by default) prediction, see deepcontrast.models.precision
    "precision": "auto",
}


def _tensorboard_available():
    return importlib.util.find_spec("tensorboard") is not None


class Config(_CSBDeepConfig):
    """Configuration of a :class:`~deepcontrast.models.DeepContrast` network.

    A :class:`csbdeep.models.Config` (same keys, same validation, CSBDeep's defaults but for
    ``train_tensorboard``, see below) with extra keys of its own. The model folder keeps CSBDeep's
    keys (the network) in ``config.json``, so ``csbdeep.models.CARE`` loads it, and the extra
    keys in ``deepcontrast.json`` (see :func:`split_config`).

    Defaults that differ from, or are worth stating next to, CSBDeep's:

    - ``train_loss='mae'``: the targets (raw images) carry shot noise; the L1 loss is less
      pulled by bright noisy pixels than L2 and is CSBDeep's default for CARE as well.
    - ``unet_n_depth=2``, ``unet_kern_size=5`` (2D) / ``3`` (3D), ``unet_n_first=32``: CSBDeep's
      CARE net. Its receptive field (theoretically 43 px in 2D) covers the scattered-light halo
      of the default forward model at typical pixel sizes while staying fast to apply; deeper
      nets cost speed for little gain in our checks.
    - ``train_tensorboard``: on only when the ``tensorboard`` package is importable (TF >= 2.16
      no longer installs it and CSBDeep's TensorBoard callback would fail).

    Parameters
    ----------
    axes : str
        Axes of the network input, e.g. ``'YX'`` or ``'ZYX'`` (channel axis optional).
    n_channel_in, n_channel_out : int
        Number of input and output channels (equal for iterative prediction).
    probabilistic : bool
        Predict per-pixel Laplace distributions (CSBDeep's probabilistic CARE).
    allow_new_parameters : bool
        Allow keys that neither csbdeep nor this class define.
    **kwargs
        Any configuration key (see :class:`csbdeep.models.Config`) and the extra keys:

        ``degradation_settings`` : dict or None
            The data-generation settings (forward model parameters, extra depth, voxel size,
            ...; what ``DegradedRawData.settings`` returns and the ``.settings.json`` side file
            of the training data holds). Saved with the model so it documents how it was trained.
        ``predict_memory_mb`` : float
            Memory budget (MiB) of one network call when ``predict(..., n_tiles=None)`` chooses
            the tiling automatically (default 2048).
        ``normalize_per_slice`` : bool or None
            The default normalizer of ``predict`` normalizes every YX plane on its own
            percentiles (:class:`~deepcontrast.models.SlicePercentileNormalizer`): each plane
            of a stack a 2D network runs over, each Z plane of a 3D network's input. Right for
            models trained on stacks normalized per plane: ``DegradedRawData`` does that by
            default for stacks (``normalize_planes=True``), and :func:`deepcontrast.data.per_slice`
            patches are planes. ``None`` (default) decides from ``degradation_settings``
            (:func:`planes_normalized`): as the training data were made; without settings,
            True for 3D networks (the package's own 3D training data), False for 2D ones.
            Pass False for a 3D network trained on whole-stack normalized patches (e.g. from
            CSBDeep's own ``RawData``).
        ``precision`` : str
            ``'auto'`` (default), ``'float32'``, ``'bfloat16'`` or ``'float16'``: the precision
            the network trains in and, unless ``predict(..., precision=...)`` says otherwise,
            predicts in. Mixed precision computes the convolutions in 16 bits while the final
            layer, the loss and the weights stay float32 (so saved weights and exports are
            the same as with float32). ``'auto'`` picks bfloat16 on GPUs of compute capability
            >= 8.0 and CPUs with AVX-512 BF16 / AMX, float16 on older GPUs, float32 otherwise
            (see :func:`deepcontrast.models.precision.resolve_precision`).

    Raises
    ------
    ValueError
        Invalid axes (from csbdeep).
    AttributeError
        An unknown key (unless ``allow_new_parameters``).

    Examples
    --------
    >>> config = Config('ZYX', unet_n_depth=2, train_epochs=50)
    >>> config.is_valid()
    True
    """

    def __init__(self, axes="YX", n_channel_in=1, n_channel_out=1, probabilistic=False,
                 allow_new_parameters=False, **kwargs):
        extra = {k: kwargs.pop(k) for k in list(kwargs) if k in EXTRA_DEFAULTS}
        kwargs.setdefault("train_tensorboard", _tensorboard_available())
        super().__init__(axes, n_channel_in, n_channel_out, probabilistic,
                         allow_new_parameters=allow_new_parameters, **kwargs)
        for k, v in EXTRA_DEFAULTS.items():
            setattr(self, k, extra.get(k, v))
        if self.normalize_per_slice is None:
            self.normalize_per_slice = planes_normalized(self.degradation_settings, self.n_dim)

    @classmethod
    def from_training_data(cls, npz_path, axes=None, **kwargs):
        """Make a configuration that matches a training-data npz and its settings side file.

        Reads the axes (and channel counts) from ``npz_path`` (as written by
        :func:`csbdeep.io.save_training_data`) and the data-generation settings from
        ``'<npz_path without .npz>.settings.json'`` when that file exists; patches made per
        plane (:func:`deepcontrast.data.per_slice`, or stacks normalized per plane by
        ``DegradedRawData``) set ``normalize_per_slice=True`` so the model normalizes each
        plane on its own when it predicts, as in training; an npz without settings (not made
        by ``DegradedRawData``) gets ``normalize_per_slice=False``.

        Parameters
        ----------
        npz_path : str or Path
            Training data written by ``deepcontrast.data.create_patches(..., save_file=...)``.
        axes : str or None
            Network axes; ``None`` takes them from the npz (without the sample axis).
        **kwargs
            Further configuration keys (override what was read).

        Returns
        -------
        Config

        Raises
        ------
        FileNotFoundError
            ``npz_path`` does not exist.
        ValueError
            The npz or the settings file cannot be read.

        Examples
        --------
        >>> config = Config.from_training_data('data/my_training_data.npz', train_epochs=20)  # doctest: +SKIP
        """
        import numpy as np

        npz_path = Path(npz_path)
        if not npz_path.exists():
            raise FileNotFoundError(f"training data {npz_path} does not exist; create it with deepcontrast datagen")
        try:
            with np.load(npz_path) as f:
                data_axes = str(f["axes"].item()) if "axes" in f else None
                x_shape = f["X"].shape
                y_shape = f["Y"].shape
        except Exception as e:
            raise ValueError(f"cannot read training data {npz_path} ({type(e).__name__}: {e}); "
                             "it must be an npz written by csbdeep.io.save_training_data") from None
        if axes is None:
            if data_axes is None:
                raise ValueError(f"{npz_path} stores no axes; pass axes= explicitly")
            axes = data_axes.replace("S", "").replace("C", "")
        if data_axes and "C" in data_axes:
            c = data_axes.index("C")
            kwargs.setdefault("n_channel_in", x_shape[c])
            kwargs.setdefault("n_channel_out", y_shape[c])
        if "degradation_settings" not in kwargs:
            kwargs["degradation_settings"] = load_settings(npz_path)
        # patches of stacks normalized per plane are predicted per plane; an npz without settings
        # was not made by DegradedRawData: its patches were normalized whole (CSBDeep's way)
        if kwargs["degradation_settings"] is None:
            kwargs.setdefault("normalize_per_slice", False)
        return cls(axes, **kwargs)

    def is_valid(self, return_invalid=False):
        """Check csbdeep's keys and ours; see :meth:`csbdeep.models.Config.is_valid`.

        Returns
        -------
        bool or (bool, tuple of str)
            Validity, and with ``return_invalid`` the names of the invalid keys.
        """
        ok, invalid = super().is_valid(True)
        invalid = list(invalid)
        ds = getattr(self, "degradation_settings", None)
        if ds is not None:
            try:
                if not isinstance(ds, dict):
                    raise TypeError
                json.dumps(ds)
            except (TypeError, ValueError):
                invalid.append("degradation_settings")
        mem = getattr(self, "predict_memory_mb", None)
        try:
            if not float(mem) > 0:
                invalid.append("predict_memory_mb")
        except (TypeError, ValueError):
            invalid.append("predict_memory_mb")
        if not isinstance(getattr(self, "normalize_per_slice", False), bool):
            invalid.append("normalize_per_slice")
        if getattr(self, "precision", "auto") not in PRECISIONS:
            invalid.append("precision")
        if return_invalid:
            return len(invalid) == 0, tuple(invalid)
        return len(invalid) == 0


def planes_normalized(settings, n_dim):
    """Whether training data made with ``settings`` had every YX plane normalized on its own.

    The default of ``Config(normalize_per_slice=None)``: True for per-plane patches
    (``settings['per_slice']``) and for stacks ``DegradedRawData`` normalized per plane
    (``settings['normalize_planes']``); False for settings written before that option existed
    (whole-stack normalization). Without settings, True for 3D networks (what
    ``DegradedRawData`` makes of stacks by default) and False for 2D networks.

    Parameters
    ----------
    settings : dict or None
        ``DegradedRawData.settings`` (the training data's ``.settings.json``).
    n_dim : int
        Spatial dimensions of the network (2 or 3).

    Returns
    -------
    bool

    Examples
    --------
    >>> planes_normalized({'per_slice': 'Z'}, 2), planes_normalized({'axes': 'ZYX'}, 3), planes_normalized(None, 3)
    (True, False, True)
    """
    if settings is None:
        return n_dim == 3
    if not isinstance(settings, dict):
        return False  # invalid settings: Config.is_valid names them
    return bool(settings.get("per_slice") or settings.get("normalize_planes"))


def split_config(config):
    """Split a configuration into the network and deepcontrast's settings, as the model folder stores them.

    Parameters
    ----------
    config : Config or csbdeep.models.Config
        A configuration (a plain CSBDeep one has no settings).

    Returns
    -------
    network : dict
        CSBDeep's keys: the content of the model folder's ``config.json`` (JSON types).
    settings : dict
        The keys of :data:`EXTRA_DEFAULTS` the configuration has (``degradation_settings``,
        ``predict_memory_mb``, ``normalize_per_slice``, ``precision``): they go to
        ``deepcontrast.json``.

    Examples
    --------
    >>> network, settings = split_config(Config('YX', precision='float32'))
    >>> settings['precision'], 'precision' in network, network['axes']
    ('float32', False, 'YXC')
    """
    keys = to_jsonable(vars(config))
    network = {k: v for k, v in keys.items() if k not in EXTRA_DEFAULTS}
    settings = {k: v for k, v in keys.items() if k in EXTRA_DEFAULTS}
    return network, settings
