"""The iteration trade-off table and the suggested number of iterations."""
import logging

import numpy as np

from .contrast import dcts, michelson_contrast, rms_contrast, weber_contrast
from .levels import background_noise, intensity_stats
from .reference import detail_retention, nrmse, psnr, ssim

log = logging.getLogger(__name__)


def iteration_tradeoff(raw, iterates, *, mask=None, ground_truth=None, normalize="affine", band=(1.0, 4.0),
                       background=0.0, noise=None):
    r"""Contrast gained and detail kept by each iteration, as a table (list of dicts).

    Row 0 is the raw image, row ``k`` the ``k``-th iterate. Each row holds

    * ``rms_contrast``, ``michelson_contrast``, ``weber_contrast`` (Otsu foreground), computed
      on the pixels inside ``mask`` when given, and ``dcts`` (whole image). Negative
      intensities (network undershoot below the background) are clipped to 0 first: the
      contrast ratios are defined for non-negative intensities and would otherwise blow up as
      a restored image's mean approaches 0;
    * ``contrast_gain = rms_contrast(iterate) / rms_contrast(raw)`` (1 for the raw);
    * ``detail_retention = detail_retention(raw, iterate, band)`` (1 for the raw);
    * the drift an iteration can hide behind a contrast gain (inside ``mask`` when given): the
      ``mean`` intensity, the ``p99_5`` (99.5th percentile: the level of bright structures),
      the ``min``, and ``below_background`` (True when the 0.1th percentile lies more than 4
      noise standard deviations below ``background``: negative light, see
      :func:`~deepcontrast.metrics.intensity_stats`; never for the raw, row 0);
    * with ``ground_truth``: ``psnr``, ``ssim``, ``nrmse`` (see :func:`psnr`).

    A metric that is undefined for an image (e.g. RMS contrast of an image with a negative
    mean) is ``None`` and a warning is logged, never NaN.

    Parameters
    ----------
    raw : array_like
        The raw image (Y and X last).
    iterates : sequence of array_like
        The iterates, each of the raw's shape.
    mask : array_like of bool, optional
        Region of interest (e.g. the deepest slices) for the contrast metrics.
    ground_truth : array_like, optional
        Clean image of the raw's shape.
    normalize : {'affine', 'percentile', None}
        Normalization for the ground-truth metrics.
    band : (float, float)
        Band (px) of :func:`detail_retention`.
    background : float
        Intensity of no light (camera offset; default 0).
    noise : float, optional
        Noise standard deviation at the background (default
        :func:`~deepcontrast.metrics.background_noise` of ``raw``).

    Returns
    -------
    list of dict
        One row per image (``iteration`` 0 = raw), values plain Python floats or None.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> raw = 1 + rng.random((16, 16))
    >>> rows = iteration_tradeoff(raw, [raw, raw])
    >>> [r['contrast_gain'] for r in rows]
    [1.0, 1.0, 1.0]
    """
    raw = np.asarray(raw)
    images = [raw] + [np.asarray(x) for x in iterates]
    for k, x in enumerate(images[1:], 1):
        if x.shape != raw.shape:
            raise ValueError(f"iterate {k} has shape {x.shape} but the raw image has shape {raw.shape}; they must match")
    if noise is None:
        noise = background_noise(raw, background)
    rows = []
    for k, x in enumerate(images):
        row = {"iteration": k}
        row.update(image_metrics(x, raw, mask=mask, ground_truth=ground_truth, normalize=normalize, band=band,
                                 background=background, noise=noise))
        rows.append(row)
    return rows


def image_metrics(img, raw, *, mask=None, ground_truth=None, normalize="affine", band=(1.0, 4.0), raw_rms=None,
                  background=0.0, noise=None):
    """The metrics of one row of :func:`iteration_tradeoff`: ``img`` measured against ``raw``.

    Parameters
    ----------
    img, raw : array_like
        The image to measure and the raw image it came from (same shape, Y and X last).
    mask, ground_truth, normalize, band
        As in :func:`iteration_tradeoff`.
    raw_rms : float, optional
        RMS contrast of the raw (within ``mask``), if already known.
    background : float
        Intensity of no light, for ``below_background`` (default 0).
    noise : float, optional
        Noise standard deviation at the background, for ``below_background`` (default: from ``raw``).

    Returns
    -------
    dict
        ``rms_contrast``, ``michelson_contrast``, ``weber_contrast``, ``dcts``,
        ``contrast_gain``, ``detail_retention``, ``mean``, ``p99_5``, ``min``,
        ``below_background``, ``below_background_noise`` and, with ``ground_truth``, ``psnr``, ``ssim``, ``nrmse``;
        undefined values are None (with a logged warning).

    Raises
    ------
    ValueError
        If ``mask`` selects no pixels.

    Examples
    --------
    >>> x = 1 + np.random.default_rng(0).random((16, 16))
    >>> image_metrics(x, x)['detail_retention']
    1.0
    """

    def safe(name, f, *a, **kw):
        try:
            return float(f(*a, **kw))
        except ValueError as e:
            log.warning("%s undefined: %s", name, e)
            return None

    pos = np.maximum(np.asarray(img, np.float64), 0)  # intensities are photon counts: undershoot -> 0
    v = pos if mask is None else pos[np.asarray(mask, bool)]
    if v.size == 0:
        raise ValueError("mask selects no pixels; pass a mask with at least one True pixel (or mask=None)")
    out = {
        "rms_contrast": safe("rms_contrast", rms_contrast, v),
        "michelson_contrast": safe("michelson_contrast", michelson_contrast, v),
        "weber_contrast": safe("weber_contrast", weber_contrast, v),
        "dcts": safe("dcts", dcts, img),
    }
    raw_pos = np.maximum(np.asarray(raw, np.float64), 0)
    base = raw_rms if raw_rms is not None else safe("rms_contrast", rms_contrast, raw_pos, mask)
    out["contrast_gain"] = out["rms_contrast"] / base if base and out["rms_contrast"] is not None else None
    out["detail_retention"] = safe("detail_retention", detail_retention, raw, img, band)
    out.update(intensity_stats(img, raw, mask=mask, background=background, noise=noise))
    if ground_truth is not None:
        for name, f in (("psnr", psnr), ("ssim", ssim), ("nrmse", nrmse)):
            out[name] = safe(name, f, img, ground_truth, normalize=normalize)
    return out


#: the image-statistics rule in words (``{r}``: min_retention, ``{g}``: min_gain_step)
IMAGE_RULE = ("image statistics: largest k such that every iteration 1..k keeps detail_retention >= {r} and raises "
              "the contrast gain by >= {g:.0%} over the previous iteration (whole image; 1 if even iteration 1 fails)")
#: the data-consistency rule in words
CONSISTENCY_RULE = ("data consistency: the median over planes of the most iterations each plane's raw data support "
                    "(chi2 within 20% of iteration 1's and restored depth <= the plane's own depth, "
                    "deepcontrast.consistency.choose_iterations), rounded, at least 1")
#: the report when no iterate restored anything
NO_RESTORATION_RULE = ("data consistency: no restoration happened (restored depth about 0 um in every iterate, or not "
                       "measurable with this forward model): no number of iterations to suggest")


def suggest_n_iter(table, *, min_retention=0.97, min_gain_step=0.02, consistency=None, explain=False):
    r"""Pick the number of iterations: by the data-consistency check when given, else by image statistics.

    Image-statistics rule: the largest ``k >= 1`` such that every iteration ``j = 1..k`` both
    keeps enough detail, ``detail_retention_j >= min_retention``, and still raises contrast,
    ``contrast_gain_j >= (1 + min_gain_step) * contrast_gain_{j-1}``. Iteration 1 is returned
    when even it fails (one pass is the method's intended use; look at the table). Ground
    truth, when present, is deliberately not used: real data has none.

    Data-consistency rule (with ``consistency``, e.g. from
    :func:`deepcontrast.consistency.check_consistency`): per plane, the most iterations the raw
    data support (:func:`deepcontrast.consistency.choose_iterations`, the rule of
    ``predict_adaptive``: chi2 within 20% of iteration 1's and not restored past the
    surface), then the median over planes, rounded, at least 1; it replaces the
    image-statistics rule, which counts contrast that the data may not support. When no iterate
    restored any depth (``consistency.no_restoration``: median restored depth under 1 um in
    every iterate, or not measurable: a forward model without depth dependence) and, for a
    measurable model, the iterates equal the raw (contrast within
    ``min_gain_step`` of 1, detail retention >= ``1 - min_gain_step / 2``) the answer is 0:
    nothing to suggest, no restoration happened; when the iterates do differ from the raw, the
    check could not resolve the depth (e.g. sub-pixel blur increments near the surface) and
    the image-statistics rule chooses (``note`` says so). One number for a stack over-processes its shallow planes and under-processes
    its deep ones: ``predict_adaptive`` chooses per plane.

    Parameters
    ----------
    table : list of dict
        Output of :func:`iteration_tradeoff` (row 0 = raw).
    min_retention : float
        Lowest acceptable detail retention, in [0, 1]. The default 0.97 is a heuristic set on
        the built-in sample (:func:`deepcontrast.data.synthetic_tissue`), where PSNR against
        the clean truth peaked at the last iteration with retention above it; lower it to
        accept more detail loss for more contrast.
    min_gain_step : float
        Lowest relative contrast increase per iteration worth taking.
    consistency : ConsistencyReport or dict, optional
        ``restored_depth`` and ``chi2`` ``(n_iter, Z)``, ``plane_depth`` ``(Z,)`` (a
        :class:`~deepcontrast.consistency.ConsistencyReport`, its ``to_dict()``, or the
        ``consistency`` section of an evaluation report), for the same iterates as ``table``.
    explain : bool
        Also return which rule chose and what each rule said.

    Returns
    -------
    int
        The suggested number of iterations (>= 1; 0 when the consistency check found no
        restoration).
    dict
        Only with ``explain``: ``rule`` (``'image statistics'``, ``'data consistency'`` or
        ``'no restoration'``), ``text`` (the rule in words), ``image_statistics`` and
        ``data_consistency`` (each rule's answer; None when not computed) and
        ``per_plane`` (the data-consistency choice of each plane, or None).

    Raises
    ------
    ValueError
        If the table has no iterate rows, or ``consistency`` holds another number of
        iterates than the table or lacks its arrays.

    Examples
    --------
    >>> t = [dict(contrast_gain=1, detail_retention=1), dict(contrast_gain=1.5, detail_retention=.99),
    ...      dict(contrast_gain=1.8, detail_retention=.98), dict(contrast_gain=2, detail_retention=.9)]
    >>> suggest_n_iter(t)
    2
    >>> cons = dict(restored_depth=[[5.0, 5.0], [10.0, 10.0], [15.0, 15.0]], chi2=[[1, 1]] * 3, plane_depth=[20, 30])
    >>> suggest_n_iter(t, consistency=cons, explain=True)[1]['rule']
    'data consistency'
    """
    if len(table) < 2:
        raise ValueError("the table needs the raw row and at least one iterate row (see iteration_tradeoff)")
    best = 1
    for k in range(1, len(table)):
        g, g0, r = table[k].get("contrast_gain"), table[k - 1].get("contrast_gain"), table[k].get("detail_retention")
        if g is None or g0 is None or r is None or r < min_retention or g < (1 + min_gain_step) * g0:
            break
        best = k
    info = {"rule": "image statistics", "text": IMAGE_RULE.format(r=min_retention, g=min_gain_step),
            "image_statistics": best, "data_consistency": None, "per_plane": None}
    if consistency is not None:
        n, per_plane, none, measurable = _consistency_choice(consistency, len(table) - 1)
        info.update(data_consistency=n, per_plane=per_plane.tolist())
        changed = measurable and any(
            abs(row.get("contrast_gain", 1.0) - 1.0) > min_gain_step
            or row.get("detail_retention", 1.0) < 1.0 - min_gain_step / 2 for row in table[1:])
        if none and changed:  # the iterates differ from the raw: the check could not resolve a depth
            info["note"] = ("the data-consistency check resolved no restored depth although the iterates differ "
                            "from the raw (e.g. sub-pixel blur increments at these depths); image statistics chose")
        elif none:
            info.update(rule="no restoration", text=NO_RESTORATION_RULE)
            best = n
        else:
            info.update(rule="data consistency", text=CONSISTENCY_RULE)
            best = n
    return (best, info) if explain else best


def _consistency_choice(consistency, n_iter):
    """(suggested n, per-plane choice, no restoration?, measurable?) from a consistency report or its dict."""
    from ..consistency.choice import choose_iterations, no_restoration  # numpy only; metrics never imports models

    get = consistency.get if isinstance(consistency, dict) else lambda k, d=None: getattr(consistency, k, d)
    try:
        rd, c2, z = (np.asarray(get(k), float) for k in ("restored_depth", "chi2", "plane_depth"))
    except TypeError:
        raise ValueError("consistency must hold restored_depth, chi2 (n_iter, Z) and plane_depth (Z,): pass a "
                         "ConsistencyReport (deepcontrast.consistency.check_consistency) or its to_dict()") from None
    if rd.ndim != 2 or rd.shape[0] != n_iter:
        raise ValueError(f"consistency holds restored depths of shape {rd.shape} but the table has {n_iter} iterate(s); "
                         "check the same iterates as the table")
    per_plane = choose_iterations(rd, c2, z, smooth=0)[1]
    measurable = get("measurable", True) is not False
    if not measurable or no_restoration(rd):
        return 0, per_plane, True, measurable
    return int(np.clip(np.floor(np.median(per_plane) + 0.5), 1, n_iter)), per_plane, False, measurable
