"""Measure the iterates of a prediction against the raw image and the classical baselines.

:func:`evaluate_model` runs the model iteratively (and CLAHE / Richardson-Lucy), then
:func:`evaluate_iterates` - the pure, array-only part - measures everything; with an output
folder the report is written by :func:`~deepcontrast.evaluate.report.write_report`.
"""
import logging

import numpy as np

from .. import metrics as M
from ..degradation import slice_depths
from ..internals.axes import axes_last, check_image_axes, spatial_voxel_size
from ..internals.files import to_jsonable
from ..version import __version__
from .consistency import consistency_section
from .report import _BASELINE_LABELS, check_targets, write_report

__all__ = ["evaluate_model", "evaluate_iterates", "compute_baselines"]

log = logging.getLogger(__name__)



def _deepest_third(axes, shape, surface):
    """Index tuple of the deepest third of Z (None for 2D or fewer than 3 slices)."""
    if "Z" not in axes or shape[axes.index("Z")] < 3:
        return None
    nz = shape[axes.index("Z")]
    k = max(1, nz // 3)
    zs = slice(nz - k, nz) if surface == "first" else slice(0, k)
    idx = [slice(None)] * len(shape)
    idx[axes.index("Z")] = zs
    return tuple(idx), (zs.start, zs.stop)


def evaluate_iterates(raw, iterates, axes, *, ground_truth=None, baselines=None, voxel_size=None, surface="first",
                      depth=0.0, normalize="affine", min_retention=0.97, min_gain_step=0.02, metric="rms",
                      background=0.0, degradation=None, consistency=None):
    """Measure the iterates of a prediction (and baselines) against the raw image, and against its data.

    For the whole image and, for stacks of >= 3 slices, for the deepest third of Z (where the
    restoration matters most), every image gets the metrics of
    :func:`deepcontrast.metrics.iteration_tradeoff`: RMS / Michelson / Weber contrast, DCTS,
    contrast gain over the raw, detail retention relative to the raw and, with
    ``ground_truth``, PSNR / SSIM / NRMSE (normalization ``normalize``, see
    :func:`deepcontrast.metrics.psnr`), and the drift a contrast gain can hide: mean, 99.5th
    percentile (bright structures) and minimum, with ``below_background`` flagging negative
    light more than 4 noise standard deviations below ``background`` (the raw's noise there,
    :func:`deepcontrast.metrics.background_noise`; see :func:`deepcontrast.metrics.intensity_stats`;
    the raw is never flagged).

    With a ``degradation`` (the model's training degradation) every iterate is also checked
    against the raw data through the forward model
    (:func:`deepcontrast.consistency.check_consistency`, on a central crop of at most 128 x 128
    pixels per plane to bound the cost, see :mod:`deepcontrast.evaluate.consistency`): restored
    depth and chi2 per iteration for the shallow, middle and deep thirds. The suggestion then
    follows the data-consistency rule (:func:`deepcontrast.metrics.suggest_n_iter`), and when
    no iterate restored any depth the report says that no restoration happened
    (``no_restoration``) and suggests no iteration (``suggested_n_iter`` None).

    Parameters
    ----------
    raw : array_like
        The raw image.
    iterates : sequence of array_like
        Iteration 1, 2, ... of the prediction, each of the raw's shape.
    axes : str
        Axes of all images, e.g. ``'ZYX'``.
    ground_truth : array_like, optional
        Clean image (synthetic data), same shape.
    baselines : dict of str -> array_like, optional
        Other restorations to compare (e.g. ``{'clahe': ..., 'richardson_lucy': ...}``).
    voxel_size : sequence of float, optional
        um per pixel of each spatial axis (for the depth axis of the contrast profile).
    surface : {'first', 'last'}
        Which end of Z is the tissue surface (decides which third is deepest).
    depth : float or numpy.ndarray
        Depth (um) of the image (2D) or of its surface-end slice; or a per-voxel depth map of a
        curved sample, shaped like ``raw`` (:func:`deepcontrast.depth.surface_depth`), which the
        consistency check uses (each plane compared on its tissue); the regions and the
        contrast profile then count slices from the surface end (depth 0 there).
    normalize : {'affine', 'percentile', None}
        Normalization for the ground-truth metrics.
    min_retention, min_gain_step : float
        Parameters of :func:`deepcontrast.metrics.suggest_n_iter`.
    metric : str
        Contrast metric of the per-slice profile.
    background : float
        Intensity of no light in the images (camera offset; default 0).
    degradation : DeepTissueDegradation, dict or 'auto', optional
        Forward model of the consistency check; None (and no ``consistency``) skips it.
    consistency : ConsistencyReport, optional
        A consistency check of these iterates already made (e.g. ``predict_adaptive``'s report's
        ``consistency``), used instead of running one.

    Returns
    -------
    dict
        JSON-serializable report: ``iterations`` (row 0 = raw; each with ``all`` and, in 3D,
        ``deepest_third`` metric dicts), ``baselines`` (same structure by name),
        ``contrast_profile`` (per-slice contrast with ``depth_um``; negative intensities clipped to 0 as in
        :func:`~deepcontrast.metrics.iteration_tradeoff`), ``suggested_n_iter`` and
        ``suggestion_rule``, ``suggested_by`` (``'image statistics'``, ``'data consistency'``
        or ``'no restoration'``), ``suggestions`` (each rule's answer), ``no_restoration``,
        ``consistency`` (see :func:`~deepcontrast.evaluate.consistency.consistency_section`;
        None without a degradation), ``best_iteration_by_psnr`` (with ground truth), and the settings.
        Non-finite values (PSNR of identical images) and undefined metrics (e.g. RMS contrast of
        an image with a negative mean; a warning is logged) are stored as None.

    Raises
    ------
    ValueError
        If shapes do not match the raw image or the axes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> raw = 1 + rng.random((6, 16, 16))
    >>> rep = evaluate_iterates(raw, [raw ** 2], 'ZYX')
    >>> rep['suggested_n_iter']
    1
    """
    raw, iterates, baselines, ground_truth, axes = _checked_images(raw, iterates, baselines, ground_truth, axes)
    vs = spatial_voxel_size(axes, voxel_size)
    region = _deepest_third(axes, raw.shape, surface)
    regions = {"all": (Ellipsis,)}
    if region is not None:
        regions["deepest_third"] = region[0]
    sub = _region_planes(axes, regions)
    noise = M.background_noise(raw, float(background))  # of the whole raw, for every region
    kw = dict(normalize=normalize, background=float(background), noise=noise)
    tables, rows = _iteration_rows(raw, iterates, ground_truth, regions, sub, kw)
    base_rows = _baseline_rows(raw, baselines, ground_truth, regions, sub, kw)
    if isinstance(degradation, dict):
        from ..degradation import DeepTissueDegradation

        degradation = DeepTissueDegradation.from_dict(degradation)
    section = None
    if consistency is not None or degradation is not None:
        _, section = consistency_section(raw, iterates, axes, degradation, voxel_size=voxel_size, surface=surface,
                                         depth=depth, report=consistency)
        section = None if "skipped" in section else section
    suggested, why = M.suggest_n_iter(tables["all"], min_retention=min_retention, min_gain_step=min_gain_step,
                                      consistency=section, explain=True)
    no_restoration = why["rule"] == "no restoration"
    if no_restoration:
        log.warning("no restoration happened: no iterate restored any depth according to the raw data (%s)",
                    "; ".join(section["notes"]) or "restored depth about 0 um")
    depths = _slice_depths(raw.shape, axes, vs, _scalar_depth(depth), surface)
    profile = _contrast_profiles(raw, iterates, baselines, axes, metric, depths)

    report = {
        "deepcontrast_version": __version__,
        "axes": axes,
        "shape": list(raw.shape),
        "n_iter": len(iterates),
        "voxel_size": list(vs),
        "depth": "map" if np.ndim(depth) else float(depth),
        "surface": surface,
        "background": float(background),
        "background_noise": float(noise),
        "normalize": normalize if ground_truth is not None else None,
        "regions": {"all": "the whole image"},
        "iterations": rows,
        "baselines": base_rows,
        "contrast_profile": profile,
        "suggested_n_iter": None if no_restoration else int(suggested),
        "suggestion_rule": why["text"],
        "suggested_by": why["rule"],
        "suggestions": {"image_statistics": why["image_statistics"], "data_consistency": why["data_consistency"]},
        "no_restoration": no_restoration,
        "consistency": section,
    }
    if region is not None:
        z0, z1 = region[1]
        report["regions"]["deepest_third"] = {"z_slices": [z0, z1 - 1],
                                              "depth_um": [float(min(depths[z0:z1])), float(max(depths[z0:z1]))]}
    if ground_truth is not None:
        report["best_iteration_by_psnr"] = {
            key: int(max(range(1, len(rows)), key=lambda k: -np.inf if tables[key][k]["psnr"] is None else tables[key][k]["psnr"]))
            for key in regions}
    return to_jsonable(report)


def _checked_images(raw, iterates, baselines, ground_truth, axes):
    """The images of :func:`evaluate_iterates` as arrays, checked against the raw's shape and the axes."""
    raw, axes = check_image_axes(raw, axes, name="raw image")
    iterates = [np.asarray(x) for x in iterates]
    if not iterates:
        raise ValueError("iterates is empty; pass at least the first iteration of the prediction")
    baselines = dict(baselines or {})
    for name, x in [(f"iteration {k}", y) for k, y in enumerate(iterates, 1)] + list(baselines.items()):
        if np.shape(x) != raw.shape:
            raise ValueError(f"{name} has shape {np.shape(x)} but the raw image has shape {raw.shape}; they must match")
    if ground_truth is not None:
        ground_truth, _ = check_image_axes(ground_truth, axes, name="ground truth")
        if ground_truth.shape != raw.shape:
            raise ValueError(f"ground truth has shape {ground_truth.shape} but the raw image has {raw.shape}; they must match")
    return raw, iterates, baselines, ground_truth, axes


def _region_planes(axes, regions):
    """``sub(x, key)``: region ``key`` of image ``x`` as float32 with Y, X last (None for None)."""

    def sub(x, key):  # Y, X last so the planar metrics see YX planes
        return None if x is None else axes_last(np.asarray(x[regions[key]], np.float32), axes, "YX")[0]

    return sub


def _iteration_rows(raw, iterates, ground_truth, regions, sub, kw):
    """Trade-off tables per region and the report's rows (row 0 = raw); warns about negative light."""
    tables = {key: M.iteration_tradeoff(sub(raw, key), [sub(y, key) for y in iterates],
                                        ground_truth=sub(ground_truth, key), **kw) for key in regions}
    below = [k for k in range(1, len(iterates) + 1) if tables["all"][k]["below_background"]]
    if below:
        log.warning("iteration(s) %s go below the background (%g) by more than %g times the raw's noise there "
                    "(%.3g): negative light; predict with physical=True (the default) keeps iterates physical",
                    ", ".join(map(str, below)), kw["background"], M.BELOW_BG_NOISE_UNITS, kw["noise"])
    rows = [{"iteration": k, "label": "raw" if k == 0 else f"iteration {k}",
             **{key: {m: v for m, v in tables[key][k].items() if m != "iteration"} for key in regions}}
            for k in range(len(iterates) + 1)]
    return tables, rows


def _baseline_rows(raw, baselines, ground_truth, regions, sub, kw):
    """The report's metrics of each baseline per region, with its display label."""
    base_rows = {}
    for name, x in baselines.items():
        base_rows[name] = {"label": _BASELINE_LABELS.get(name, name)}
        for key in regions:
            base_rows[name][key] = M.image_metrics(sub(x, key), sub(raw, key), ground_truth=sub(ground_truth, key), **kw)
    return base_rows


def _scalar_depth(depth):
    """The depth of the surface-end slice: ``depth``, or 0 for a per-voxel map (whose surface is the tissue's own)."""
    return 0.0 if np.ndim(depth) else float(depth)


def _slice_depths(shape, axes, vs, depth, surface):
    """Depth (um) of each Z slice (one value for an image without Z)."""
    if "Z" not in axes:
        return np.array([float(depth)])
    vz = vs[[a for a in axes if a in "ZYX"].index("Z")]
    return slice_depths(shape[axes.index("Z")], depth=depth, voxel_size_z=vz, surface=surface)


def _contrast_profiles(raw, iterates, baselines, axes, metric, depths):
    """Per-slice contrast of the raw, every iterate and every baseline (negative values clipped to 0)."""
    profile = {"metric": metric, "depth_um": depths, "raw": M.contrast_profile(np.maximum(raw, 0), axes, metric, undefined="nan")}
    for k, y in enumerate(iterates, 1):
        profile[f"iteration_{k}"] = M.contrast_profile(np.maximum(y, 0), axes, metric, undefined="nan")
    for name, x in baselines.items():
        profile[name] = M.contrast_profile(np.maximum(x, 0), axes, metric, undefined="nan")
    return profile


def _resolve_degradation(model, degradation, default=True):
    """The given degradation, else the model's training degradation, else the package defaults (None if not default)."""
    from ..degradation import DeepTissueDegradation

    if degradation is not None:
        return DeepTissueDegradation.from_dict(degradation) if isinstance(degradation, dict) else degradation
    settings = getattr(model, "degradation_settings", None) or {}
    if isinstance(settings, dict) and isinstance(settings.get("degradation"), dict):
        return DeepTissueDegradation.from_dict(settings["degradation"])
    return DeepTissueDegradation() if default else None


def compute_baselines(img, axes, *, degradation=None, voxel_size=None, depth=0.0, surface="first", rl_iter=10):
    """CLAHE and Richardson-Lucy (forward-model PSF) of ``img``: ``{'clahe': ..., 'richardson_lucy': ...}``."""
    from ..baselines import clahe, richardson_lucy

    return {
        "clahe": clahe(img, axes),
        "richardson_lucy": richardson_lucy(img, axes, n_iter=rl_iter, degradation=degradation, depth=depth,
                                           voxel_size=voxel_size, surface=surface),
    }


def evaluate_model(model, img, axes, *, n_iter=4, ground_truth=None, voxel_size=None, surface="first", depth=0.0,
                   n_tiles=None, baselines=True, out_dir=None, overwrite=False, degradation=None, rl_iter=10,
                   consistency=True):
    """Predict ``n_iter`` iterations with ``model`` and measure them against the raw and baselines.

    Calls ``model.predict_iterative(img, axes, n_iter, n_tiles=n_tiles)``, computes CLAHE and
    Richardson-Lucy (PSF of the model's forward model, see
    :func:`deepcontrast.baselines.richardson_lucy`) when ``baselines``, and returns
    :func:`evaluate_iterates`'s report; with ``out_dir`` also writes it (:func:`write_report`).

    Parameters
    ----------
    model : DeepContrast
        A trained model (anything with ``predict_iterative``).
    img : array_like
        Raw image.
    axes : str
        Its axes, e.g. ``'ZYX'``.
    n_iter : int
        Number of iterations to evaluate.
    ground_truth : array_like, optional
        Clean image of the same shape (synthetic data).
    voxel_size : sequence of float, optional
        um per pixel per spatial axis; default: the model's training ``voxel_size`` when it
        matches, else 1.
    surface : {'first', 'last'}
        Which end of Z is the tissue surface.
    depth : float or numpy.ndarray
        Depth (um) of the image (2D) or of its surface-end slice, or a per-voxel depth map (see
        :func:`evaluate_iterates`; Richardson-Lucy then takes the slice depths from 0).
    n_tiles : tuple of int, optional
        Tiling for prediction (see CSBDeep's ``predict``).
    baselines : bool
        Also compute CLAHE and Richardson-Lucy.
    out_dir : str or Path, optional
        Folder for ``metrics.json``, the figures and the TIFFs.
    overwrite : bool
        Replace existing report files in ``out_dir``.
    degradation : DeepTissueDegradation or dict, optional
        Forward model for the Richardson-Lucy PSF (default: the model's, else package defaults)
        and for the consistency check (default: the model's training degradation; a model
        without one is not checked).
    rl_iter : int
        Richardson-Lucy iterations.
    consistency : bool
        Check every iterate against the raw data through the forward model (restored depth and
        chi2 per third; bounded cost, see :mod:`deepcontrast.evaluate.consistency`).

    Returns
    -------
    dict
        The report (see :func:`evaluate_iterates`).

    Raises
    ------
    ValueError
        For bad inputs or a prediction whose shape differs from the image.
    FileExistsError
        If report files exist in ``out_dir`` and not ``overwrite``.
    """
    img, axes = check_image_axes(img, axes)
    if int(n_iter) != n_iter or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
    if voxel_size is None:
        vs = (getattr(model, "degradation_settings", None) or {}).get("voxel_size")
        n_spatial = sum(a in "ZYX" for a in axes)
        if vs is not None and len(vs) == n_spatial:
            voxel_size = tuple(vs)
            log.info("using the model's training voxel size %s um", voxel_size)
    if ground_truth is not None:
        ground_truth, _ = check_image_axes(ground_truth, axes, name="ground truth")
        if ground_truth.shape != img.shape:
            raise ValueError(f"ground truth has shape {ground_truth.shape} but the image has {img.shape}; they must match")
    if out_dir is not None:
        check_targets(out_dir, int(n_iter), ("clahe", "richardson_lucy") if baselines else (), overwrite)
    log.info("predicting %d iteration(s)", n_iter)
    iterates = [np.asarray(y) for y in model.predict_iterative(img, axes, int(n_iter), n_tiles=n_tiles)]
    background = float(getattr(model, "background", 0.0) or 0.0)
    base = {}
    if baselines:
        log.info("computing CLAHE and Richardson-Lucy baselines")
        base = compute_baselines(img, axes, degradation=_resolve_degradation(model, degradation), voxel_size=voxel_size,
                                 depth=_scalar_depth(depth), surface=surface, rl_iter=rl_iter)
    check = _resolve_degradation(model, degradation, default=False) if consistency else None
    if consistency and check is None:
        log.info("no consistency check: the model records no training degradation; pass degradation=")
    report = evaluate_iterates(img, iterates, axes, ground_truth=ground_truth, baselines=base, voxel_size=voxel_size,
                               surface=surface, depth=depth, background=background, degradation=check)
    report["model"] = str(getattr(model, "name", "") or "")
    if out_dir is not None:
        write_report(out_dir, report, img, iterates, axes, baselines=base, overwrite=overwrite)
    return report
