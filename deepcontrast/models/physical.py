"""Physical iterates: no light below the background, and restoration that moves light, not makes it.

A network trained on (degraded raw -> raw) pairs and applied to its own output drifts: each
pass darkens the image a little (percentile normalization anchors the bright end, the loss
favours the median of noisy low-count targets), and undershoot around bright structures goes
below the background (negative light). Measured on a dim synthetic stack (deepest planes at
<= 10 expected photons, per-plane 2D route): the deepest third's mean fell to 0.83, 0.67,
0.54 of the raw over three iterations and 25-47 % of the shallowest plane went below zero.

The forward model says what a restoration may do. Blur, haze and out-of-focus light are
convolutions with kernels of unit integral: they *redistribute* light and keep its total.
Undoing them must keep it too; only attenuation changes it, and the normalization already
takes attenuation out of what the network learns. So every iteration here is followed by

1. a floor: no pixel below the background (the intensity of no light: camera offset,
   0 for offset-free data);
2. flux conservation: each plane (of a 2D network over a stack, and of a 3D network's
   volume alike) is scaled about the background so that its light above the background
   equals that of the iteration's input.

Both happen in the network's normalized space, where they are exact as well (the
normalization is affine). Per plane, not per volume: restoration does not undo attenuation
(the normalization takes it out of what the network learns), so a plane's light should stay
that plane's; kept per volume only, a 3D network still moved light from the deep planes to the
shallow ones (deepest-third mean 0.92, 0.81, 0.67 of the raw over three iterations, against 1
per plane, and 0.16 dB lower best PSNR). With them the deepest third's mean stays that of the raw, bright
structures gain from iteration to iteration (light moves from the haze back into them) and
no value goes below the background, while contrast keeps rising. See
``benchmarks/bench_fidelity.py`` for the figures.
"""
import logging

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["physical_step", "normalized_background", "model_background", "MAX_LIGHT_RATIO"]

#: the light of a sample is restored by at most this factor (and lowered by at most its inverse)
#: in one pass. A trained network changes a plane's light by ~20% per pass (bright structures
#: keep theirs, haze goes); a network that loses nearly all of it (untrained, or applied to data
#: unlike its training data) would otherwise have the little light left multiplied into spikes.
MAX_LIGHT_RATIO = 4.0


def physical_step(x, y, floor, axis=None):
    """Floor ``y`` at ``floor`` and scale each sample (or plane) to the light of ``x`` above ``floor``.

    Parameters
    ----------
    x : numpy.ndarray
        The iteration's input, ``(B, *spatial, C)``.
    y : numpy.ndarray
        The network's output for ``x``, same shape.
    floor : float or numpy.ndarray
        The background (no light) in the same units, a scalar or broadcastable to
        ``(B, 1, ..., 1, C)`` (one value per sample and channel).
    axis : tuple of int or None
        Axes over which the light is summed and kept: default all spatial axes (per sample
        and channel); ``(2, 3)`` of a ``(B, Z, Y, X, C)`` array keeps it per Z plane.

    Returns
    -------
    numpy.ndarray
        float32 array of ``y``'s shape: ``>= floor`` everywhere and, per sample and channel
        (summed over ``axis``), ``sum(out - floor) == sum(x - floor)`` whenever both sums of light are positive (a
        sample without light above the background is only floored). The scale is limited to
        ``[1 / MAX_LIGHT_RATIO, MAX_LIGHT_RATIO]`` (a warning names the samples where it is).

    Examples
    --------
    >>> x = np.array([[[1.], [3.]]], np.float32)          # one sample, 2 pixels, 1 channel
    >>> y = np.array([[[-1.], [5.]]], np.float32)         # undershoot and more light
    >>> physical_step(x, y, 0.0)[..., 0]
    array([[0., 4.]], dtype=float32)
    """
    y = np.asarray(y, np.float32)
    floor = np.asarray(floor, np.float32)
    out = np.maximum(y, floor)
    out -= floor
    if axis is None:
        axis = tuple(range(1, y.ndim - 1))
    light_in = np.sum(np.asarray(x, np.float64) - floor, axis=axis, keepdims=True)
    light_out = np.sum(out, axis=axis, keepdims=True, dtype=np.float64)
    ok = (light_in > 0) & (light_out > 0)
    scale = np.where(ok, light_in / np.where(ok, light_out, 1.0), 1.0)
    capped = (scale > MAX_LIGHT_RATIO) | (scale < 1 / MAX_LIGHT_RATIO)
    if np.any(capped):
        log.warning("the network changed the light of %d of %d sample(s) by more than %gx in one pass (up to %.3gx); "
                    "the balance is capped there. Is the model trained, and on data like these?",
                    int(np.count_nonzero(capped)), capped.size, MAX_LIGHT_RATIO,
                    float(np.max(np.maximum(scale, 1 / scale))))
        scale = np.clip(scale, 1 / MAX_LIGHT_RATIO, MAX_LIGHT_RATIO)
    scale = scale.astype(np.float32)
    out *= scale
    out += floor
    return out


def normalized_background(normalizer, background, n_samples, net_axes, n_channels):
    """The background intensity in the normalized space of ``normalizer`` (per sample, channel).

    Works for every affine normalizer that maps back (``do_after``), whatever its internals
    (CSBDeep's percentile normalizers, :class:`SlicePercentileNormalizer`, ``NoNormalizer``):
    the normalized value of ``background`` is read off the inverse map at 0 and 1.

    Parameters
    ----------
    normalizer : csbdeep.data.Normalizer
        A normalizer whose ``before`` has been applied to the network input.
    background : float
        Intensity of no light in the raw image's units.
    n_samples : int
        Number of samples ``B`` of the network input.
    net_axes : str
        Axes of the network input, e.g. ``'SYXC'``.
    n_channels : int
        Channels of the network input.

    Returns
    -------
    numpy.ndarray or None
        float32 of shape ``(B, 1, ..., 1, C)``, or None when the normalizer does not map back
        (then iterates stay in its normalized space and no floor can be placed).
    """
    if not getattr(normalizer, "do_after", False):
        return None
    shape = (n_samples,) + (1,) * (len(net_axes) - 2) + (n_channels,)
    zero, _ = normalizer.after(np.zeros(shape, np.float32), None, net_axes)
    one, _ = normalizer.after(np.ones(shape, np.float32), None, net_axes)
    span = np.asarray(one, np.float64) - np.asarray(zero, np.float64)
    span = np.where(span == 0, 1.0, span)
    return ((float(background) - np.asarray(zero, np.float64)) / span).astype(np.float32)


def pad_like_input(floor, shape, net_axes, resizer=None):
    """``floor`` (one value per sample, channel and possibly Z plane) padded to the padded input.

    A per-plane normalizer of a 3D network gives a floor with one entry per Z plane of the
    input *before* the resizer padded it to the network's multiple; the padded planes get the
    floor of the planes the resizer made them from (its ``pad`` and ``mode``, as CSBDeep's
    ``PadAndCropResizer`` records them), or of the nearest plane for other resizers.

    Parameters
    ----------
    floor : numpy.ndarray
        Shape ``(B, 1 or n, ..., C)`` in the layout ``net_axes``.
    shape : tuple of int
        Shape of the padded network input.
    net_axes : str
        Axes of the network input, e.g. ``'SZYXC'``.
    resizer : csbdeep.data.Resizer or None
        The resizer that padded the input.

    Returns
    -------
    numpy.ndarray
        ``floor`` with every axis of extent > 1 padded to ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> pad_like_input(np.arange(3.0).reshape(1, 3, 1, 1, 1), (1, 4, 8, 8, 1), 'SZYXC').ravel().tolist()
    [0.0, 1.0, 2.0, 2.0]
    """
    pads = []
    for d, (a, n, m) in enumerate(zip(net_axes, floor.shape, shape)):
        if n in (1, m):
            pads.append((0, 0))
            continue
        p = getattr(resizer, "pad", {}).get(a)
        if p is None or sum(p) != m - n:
            p = (0, m - n)
        pads.append(tuple(int(v) for v in p))
    if not any(sum(p) for p in pads):
        return floor
    mode = getattr(resizer, "mode", "edge") if getattr(resizer, "pad", None) else "edge"
    kwargs = getattr(resizer, "kwargs", {}) if mode != "edge" else {}
    return np.pad(floor, pads, mode=mode, **kwargs)


def model_background(degradation_settings):
    """The background (no-light intensity) of a model's training data, 0 when unknown.

    Parameters
    ----------
    degradation_settings : dict or None
        ``DeepContrast.degradation_settings`` (what ``DegradedRawData.settings`` recorded).

    Returns
    -------
    float
    """
    try:
        return float((degradation_settings or {}).get("degradation", {}).get("background") or 0.0)
    except (TypeError, ValueError, AttributeError):
        log.warning("the model's degradation settings hold no usable background; using 0")
        return 0.0
