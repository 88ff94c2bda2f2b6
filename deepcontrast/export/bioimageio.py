"""Export models as bioimage.io model packages (spec 0.5), for deepImageJ, ilastik, napari, QuPath.

Needs the ``bioimageio`` extra: ``pip install "deepcontrast[bioimageio]"``.
"""
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ..internals.files import atomic_write, zip_dir
from ..models.config import split_config
from ..models.precision import float32_network
from ._bioimageio_docs import cover_image, documentation_markdown

log = logging.getLogger(__name__)

#: percentiles of the declared input normalization (CSBDeep's ``PercentileNormalizer`` defaults,
#: the middle of the ranges ``create_patches`` samples from during training)
PMIN, PMAX = 2.0, 99.8

DEFAULT_CITE = (
    {"text": "Martins, Kalaidzidis, Zerial, Jug: DeepContrast (arXiv 2308.08365)", "doi": "10.48550/arXiv.2308.08365"},
    {"text": "Weigert et al.: Content-aware image restoration (Nature Methods 2018)", "doi": "10.1038/s41592-018-0216-7"},
)


def require_bioimageio():
    """Raise an ImportError naming the install command when the 'bioimageio' extra is missing."""
    try:
        import bioimageio.core  # noqa: F401
        import bioimageio.spec  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"exporting to bioimage.io needs the 'bioimageio' extra ({e}); "
            'install it with: pip install "deepcontrast[bioimageio]"'
        ) from e


def _net_axes(model):
    """Network axes without batch, channel last (e.g. 'YXC', 'ZYXC'), checked."""
    from csbdeep.utils import axes_check_and_normalize

    axes = axes_check_and_normalize(model.config.axes)
    spatial = "".join(a for a in axes if a != "C")
    if not set(spatial) <= set("ZYX"):
        raise ValueError(
            f"bioimage.io export supports models with axes from 'ZYXC', this model has {model.config.axes!r}"
        )
    return spatial + "C"


def _sizes(model, net_axes):
    """(min size, step, halo) per spatial axis: min is the smallest multiple of the step > 2 * halo."""
    spatial = net_axes[:-1]
    div = dict(zip(spatial, model._axes_div_by(spatial)))
    halo = dict(zip(spatial, model._axes_tile_overlap(spatial)))
    out = {}
    for a in spatial:
        step = int(div[a])
        mn = step * (2 * int(halo[a]) // step + 1)
        out[a] = (mn, step, int(halo[a]))
    return out


def _default_sample(net_axes, sizes, n_channel, rng=0):
    """A seeded, smooth blob image (raw-like intensities ~100-1000) of valid size, axes net_axes."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(rng)
    target = 64 if len(net_axes) == 3 else 0  # 2D: at least 64 x 64; 3D: the minimum valid size
    shape = []
    for a in net_axes[:-1]:
        mn, step, _ = sizes[a]
        shape.append(mn + step * int(np.ceil(max(0, target - mn) / step)))
    chans = [gaussian_filter(rng.random(shape), 2.0) for _ in range(n_channel)]
    img = np.stack(chans, axis=-1)
    img = (img - img.min()) / (np.ptp(img) + 1e-12)
    return (100 + 900 * img ** 2 + rng.normal(0, 5, img.shape)).astype(np.float32)


def _prepare_sample(sample, net_axes, sizes, n_channel):
    """Bring a user sample into axes net_axes (adding C if needed), cropped to a valid size."""
    x = np.asarray(sample, dtype=np.float32)
    if x.ndim == len(net_axes) - 1 and n_channel == 1:
        x = x[..., None]
    if x.ndim != len(net_axes) or x.shape[-1] != n_channel:
        raise ValueError(
            f"input_sample must have axes {net_axes!r} ({n_channel} channel(s) last; the channel axis may be "
            f"omitted for single-channel models), got shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("input_sample contains NaN or Inf values; pass a finite image")
    sl = []
    for a, n in zip(net_axes[:-1], x.shape[:-1]):
        mn, step, _ = sizes[a]
        if n < mn:
            raise ValueError(
                f"input_sample is too small along {a}: {n} < {mn} pixels (twice the halo, rounded up to a "
                f"multiple of {step}); pass a larger image"
            )
        m = mn + step * ((n - mn) // step)
        start = (n - m) // 2
        sl.append(slice(start, start + m))
    return x[tuple(sl) + (slice(None),)]


def _norm_axes(model, net_axes):
    """The spatial axes the declared percentile normalization takes jointly: Y and X for a 3D
    network that normalizes every Z plane on its own (``normalize_per_slice``), else all."""
    spatial = net_axes[:-1]
    if "Z" in spatial and getattr(model.config, "normalize_per_slice", False):
        return "YX"
    return spatial


def _test_output(model, x, net_axes):
    """Network output for sample ``x`` (axes net_axes), in normalized units, with batch axis."""
    from csbdeep.data import NoResizer, PercentileNormalizer
    from csbdeep.utils import normalize

    from ..data.normalize import SlicePercentileNormalizer

    norm_axes = _norm_axes(model, net_axes)
    per_plane = norm_axes != net_axes[:-1]
    if hasattr(model, "predict") and not model.config.probabilistic:
        kw = {"precision": "float32"} if hasattr(model, "_net_for") else {}  # what the export computes
        normalizer = (SlicePercentileNormalizer if per_plane else PercentileNormalizer)(PMIN, PMAX, do_after=False)
        y = model.predict(x, net_axes, normalizer=normalizer, resizer=NoResizer(), **kw)
        y = np.asarray(y, np.float32)
        if y.ndim == len(net_axes) - 1:
            y = y[..., None]
        return y[None]
    xn = normalize(x, PMIN, PMAX, axis=tuple(d for d, a in enumerate(net_axes[:-1]) if a in norm_axes))
    return np.asarray(float32_network(model).predict(xn[None], verbose=0), np.float32)


def _write_weights(keras_model, net_axes, n_channel, dest):
    """Write a TF SavedModel with a ``serve`` endpoint returning ``{'output': y}``, zipped."""
    import keras
    import tensorflow as tf


    spec = tf.TensorSpec([None] * len(net_axes) + [n_channel], tf.float32, name="input")
    archive = keras.export.ExportArchive()
    archive.track(keras_model)
    archive.add_endpoint(name="serve", fn=lambda x: {"output": keras_model(x, training=False)}, input_signature=[spec])
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(os.path.join(tmp, "sm"), verbose=False)
        zip_dir(os.path.join(tmp, "sm"), dest)
    return dest


def _as_authors(authors, Author):
    if authors is None:
        log.warning("no authors given for the bioimage.io package; pass authors=['Your Name'] to credit yourself")
        return [Author(name="DeepContrast user")]
    if isinstance(authors, (str, dict)):
        authors = [authors]
    return [a if isinstance(a, Author) else Author(name=a) if isinstance(a, str) else Author(**a) for a in authors]


def _as_cite(cite, CiteEntry):
    cite = DEFAULT_CITE if cite is None else ([cite] if isinstance(cite, dict) else cite)
    return [c if isinstance(c, CiteEntry) else CiteEntry(**c) for c in cite]


def _write_files(folder, model, x, y, net_axes, sizes, doc):
    """Test tensors, weights, cover image and README of the package, into ``folder``."""
    from PIL import Image

    np.save(folder / "test_input.npy", x)
    np.save(folder / "test_output.npy", y)
    _write_weights(float32_network(model), net_axes, int(model.config.n_channel_in), folder / "tf_saved_model_bundle.zip")
    Image.fromarray(cover_image(x, y, net_axes)).save(folder / "cover.png")
    halo = max(h for _, _, h in sizes.values())
    (folder / "README.md").write_text(documentation_markdown(
        net_axes=net_axes, pmin=PMIN, pmax=PMAX, halo=halo, probabilistic=bool(model.config.probabilistic), **doc))


def _tensor_descrs(bm, folder, net_axes, sizes, n_in, n_out_net, norm_axes=None):
    """bioimage.io input and output tensor descriptions (axes with valid sizes and halo).

    ``norm_axes``: the spatial axes the declared percentile normalization takes jointly
    (default all; ``'YX'`` for a 3D network normalized per Z plane).
    """
    norm_axes = [a.lower() for a in (norm_axes or net_axes[:-1])]
    spatial = [a.lower() for a in net_axes[:-1]]
    in_axes = [bm.BatchAxis()] + [
        bm.SpaceInputAxis(id=bm.AxisId(a), size=bm.ParameterizedSize(min=sizes[a.upper()][0], step=sizes[a.upper()][1]))
        for a in spatial
    ] + [bm.ChannelAxis(channel_names=[bm.Identifier(f"channel{i}") for i in range(n_in)])]
    out_axes = [bm.BatchAxis()] + [
        bm.SpaceOutputAxisWithHalo(
            id=bm.AxisId(a), size=bm.SizeReference(tensor_id=bm.TensorId("input"), axis_id=bm.AxisId(a)),
            halo=sizes[a.upper()][2],
        )
        for a in spatial
    ] + [bm.ChannelAxis(channel_names=[bm.Identifier(f"channel{i}") for i in range(n_out_net)])]
    inputs = [bm.InputTensorDescr(
        id=bm.TensorId("input"), axes=in_axes, test_tensor=bm.FileDescr(source=folder / "test_input.npy"),
        data=bm.IntervalOrRatioDataDescr(type="float32"),
        description="raw image; normalized by the declared percentile preprocessing",
        preprocessing=[bm.ScaleRangeDescr(kwargs=bm.ScaleRangeKwargs(
            axes=[bm.AxisId(a) for a in norm_axes], min_percentile=PMIN, max_percentile=PMAX))],
    )]
    outputs = [bm.OutputTensorDescr(
        id=bm.TensorId("output"), axes=out_axes, test_tensor=bm.FileDescr(source=folder / "test_output.npy"),
        data=bm.IntervalOrRatioDataDescr(type="float32"),
        description="restored image in normalized units (one iteration)",
    )]
    return inputs, outputs


def export_bioimageio(model, path, *, name=None, description=None, authors=None, license="BSD-3-Clause", cite=None, input_sample=None):
    """Export ``model`` as a bioimage.io model package (zip, spec 0.5).

    The package holds ``tensorflow_saved_model_bundle`` weights, test input/output tensors (the
    output computed with the model's own ``predict``; with Keras for probabilistic models, whose
    raw output holds mean and scale), the declared preprocessing (percentile normalization
    ``scale_range`` 2 -> 0, 99.8 -> 1 per image and channel, as in CSBDeep), the axes with their
    valid sizes and halo, a cover image and a README explaining the forward-model settings the
    model was trained with. Consumers run one iteration of the network.

    Parameters
    ----------
    model : deepcontrast.DeepContrast or csbdeep.models.CARE
        The model to export.
    path : str or pathlib.Path
        The zip to write (replaced atomically if it exists).
    name, description : str or None
        Shown on bioimage.io; default from the model name.
    authors : list of (str or dict) or None
        Author names, or dicts with ``name`` and optionally ``affiliation``, ``orcid``.
    license : str
        SPDX license identifier of the weights.
    cite : list of dict or None
        Citations (``text`` and ``doi`` or ``url``); default: DeepContrast and CARE papers.
    input_sample : numpy.ndarray or None
        A raw image with the model's axes (channel last, may be omitted for one channel) to use
        as the test input; cropped to a valid size. Default: a seeded synthetic blob image.

    Returns
    -------
    pathlib.Path
        Path of the written package.

    Raises
    ------
    ImportError
        If the ``bioimageio`` extra is not installed.
    ValueError
        If the model's axes are unsupported, the sample has the wrong shape, or the description
        does not validate.

    Examples
    --------
    >>> export_bioimageio(model, 'my_model.bioimageio.zip', authors=['Ada Lovelace'])  # doctest: +SKIP
    PosixPath('my_model.bioimageio.zip')
    """
    require_bioimageio()
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5 as bm

    path = Path(path)
    net_axes = _net_axes(model)
    n_in = int(model.config.n_channel_in)
    sizes = _sizes(model, net_axes)
    x = _default_sample(net_axes, sizes, n_in) if input_sample is None else _prepare_sample(input_sample, net_axes, sizes, n_in)
    y = _test_output(model, x, net_axes)
    x = x[None]
    config, model_settings = split_config(model.config)  # the model folder's config.json and settings
    settings = model_settings.setdefault("degradation_settings", None)
    model_name = name or f"DeepContrast {getattr(model, 'name', None) or 'model'}"
    description = description or (
        f"Contrast restoration of deep-tissue fluorescence images ({'3D' if 'Z' in net_axes else '2D'}, "
        "DeepContrast / CARE U-Net trained on forward-model degraded raw data)."
    )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write_files(tmp, model, x, y, net_axes, sizes, dict(
            name=model_name, description=description, config=config, degradation_settings=settings,
            norm_axes=_norm_axes(model, net_axes)))
        descr = _model_descr(bm, tmp, model, net_axes, sizes, dict(
            name=model_name, description=description, authors=authors, license=license, cite=cite, config=config,
            settings=model_settings))
        atomic_write(path, lambda tmp_zip: save_bioimageio_package(descr, output_path=Path(tmp_zip)))
    log.info("bioimage.io model package written to %s", path.resolve())
    return path


def _model_descr(bm, folder, model, net_axes, sizes, meta):
    """The validated bioimage.io ``ModelDescr`` of the package files in ``folder``.

    ``meta`` holds ``name``, ``description``, ``authors``, ``license``, ``cite``, ``config`` (the
    network, as in ``config.json``) and ``settings`` (deepcontrast's own, as in
    ``deepcontrast.json``) as :func:`export_bioimageio` resolved them.
    """
    import tensorflow as tf

    n_in, n_out = int(model.config.n_channel_in), int(model.config.n_channel_out)
    n_out_net = 2 * n_out if model.config.probabilistic else n_out
    inputs, outputs = _tensor_descrs(bm, folder, net_axes, sizes, n_in, n_out_net, _norm_axes(model, net_axes))
    weights = bm.WeightsDescr(tensorflow_saved_model_bundle=bm.TensorflowSavedModelBundleWeightsDescr(
        source=folder / "tf_saved_model_bundle.zip", tensorflow_version=bm.Version(tf.__version__)))
    try:
        return bm.ModelDescr(
            name=meta["name"], description=meta["description"], authors=_as_authors(meta["authors"], bm.Author),
            cite=_as_cite(meta["cite"], bm.CiteEntry), license=bm.LicenseId(meta["license"]),
            documentation=bm.FileDescr(source=folder / "README.md"), covers=[bm.FileDescr(source=folder / "cover.png")],
            inputs=inputs, outputs=outputs, weights=weights,
            tags=["deepcontrast", "care", "csbdeep", "contrast-enhancement", "fluorescence-light-microscopy",
                  "3d" if "Z" in net_axes else "2d", "tensorflow", "unet"],
            config=bm.Config(bioimageio=bm.BioimageioConfig(
                architecture_type="U-Net", task="contrast restoration", modality="fluorescence microscopy"),
                deepcontrast={"csbdeep_config": meta["config"], **meta["settings"],
                              "normalization_percentiles": [PMIN, PMAX], "iterations": 1}),
        )
    except Exception as e:  # pydantic.ValidationError: report it readably
        raise ValueError(f"the bioimage.io description of this model does not validate: {e}") from e
