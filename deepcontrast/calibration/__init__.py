"""Calibrate the forward model from your own raw images.

``deg, report = DeepTissueDegradation.calibrate(images, axes, voxel_size=..., surface=..., depth=...)``
(or :func:`calibrate`) fits the parameters of
:class:`~deepcontrast.degradation.DeepTissueDegradation` that the data can tell, and keeps
documented defaults for the rest:

* ``photons``, ``read_noise``: mean-variance fit over locally flat blocks (:mod:`.noise`),
  any image. Fallback: no shot noise (``photons=None``) and read noise only, when the
  variance does not grow with intensity.
* ``background``: third cumulant of the noise (Poisson skew), bounded by the dark level and
  the pixel floor (:mod:`.noise`).
* ``attenuation_length``: slice mean vs depth, robust log-linear fit (:mod:`.depth`), 3D
  stacks only. Fallback: default 150 um for 2D images, flat or too shallow stacks, or
  intensity rising with depth (check ``surface``).
* ``blur_rate``, ``scattering_length``: decay of the structure's power spectrum with depth, at
  the data's own sampling (:mod:`.spectral`), 3D stacks only. Fallback: defaults 0.03 and 100 um.
* ``haze_sigma``, ``haze_rate``: the same spectra, profiled on a second grid (:mod:`.spectral`),
  point-scanning stacks with a detected halo only (in widefield stacks a wide halo cannot be
  told from out-of-focus light). Fallback: defaults 3 um and 0.05.
* ``out_of_focus``: the same fit, point-scanning vs widefield model (a weak test, see
  :mod:`.spectral`; say ``microscope='widefield'`` or ``'point-scanning'`` when you know it), and ``attenuation_length`` fitted with its out-of-focus light divided
  out. Fallback: 0 (point-scanning).
* ``psf_sigma``: not estimated (it cancels in depth ratios of spectra: the ballistic width
  grows as ``s_b(z)^2 - s_b(z_ref)^2 = blur_rate^2 (z^2 - z_ref^2)`` whatever it is); default
  0.3 um.

The report flags every parameter as estimated or defaulted, with the reason.
All intensities are in the raw images' own units (``photons`` per unit of raw intensity), so
the calibrated model applies to the raw images as they are given to
:class:`~deepcontrast.data.DegradedRawData`.
"""
import logging

import numpy as np

from ..degradation import DeepTissueDegradation
from ..internals.axes import check_image_axes, spatial_voxel_size, to_planes
from .depth import contrast_vs_model, fit_attenuation, slice_stats
from .depthmap import depth_maps, fit_attenuation_map, is_flat, tile_stats, tissue_mask, voxel_sums
from .spectral import fit_spectral
from .noise import fit_noise
from .notice import blur_increment_notice, nothing_to_restore_notice, training_blur_notice
from .report import CalibrationReport

__all__ = ["blur_increment_notice", "calibrate", "nothing_to_restore_notice", "CalibrationReport", "fit_noise", "training_blur_notice"]

log = logging.getLogger(__name__)

_MAX_NOISE_PLANES = 64


def _as_list(images):
    if isinstance(images, np.ndarray):
        return [images]
    if isinstance(images, (list, tuple)):
        return list(images)
    raise ValueError(f"images must be a numpy array or a list of arrays, got {type(images).__name__}")


def _stacks(img, axes):
    """(n_z, ny, nx) float64 stacks of one image: non-spatial axes (S, T, C) split off."""
    x = to_planes(img, axes, "ZYX")[0].astype(np.float64)  # Z (depth), Y, X whatever their order in axes
    return list(x if "Z" in axes else x[:, None])


def calibrate(images, axes, *, voxel_size=None, surface="first", depth=0.0, microscope="auto", cls=None,
              defaults=None):
    """Fit :class:`~deepcontrast.degradation.DeepTissueDegradation` to raw images.

    Parameters
    ----------
    images : numpy.ndarray or list of numpy.ndarray
        Raw images (uint8/uint16/float, with or without camera offset), each with ``axes``.
        Give them as acquired: no normalization, no clipping.
    axes : str
        Axes of every image, e.g. ``'YX'``, ``'ZYX'``, ``'CZYX'`` (S/T/C are split into
        independent images, pooled for the fit).
    voxel_size : sequence of float or None
        Micrometres per pixel per spatial axis (e.g. ``(2, 0.5, 0.5)`` for ``'ZYX'``);
        default 1. Depth parameters are per micrometre, so give the real sizes.
    surface : {'first', 'last', 'auto', 'auto-last'}
        Which end of Z is the tissue surface; 'auto' ('auto-last'): the light enters at the
        first (last) slice and each voxel's depth below the tissue's own, possibly curved,
        surface is found from the stack itself (:func:`deepcontrast.depth.surface_depth`), as
        if given as ``depth`` maps.
    depth : float, numpy.ndarray or list
        Depth (um) of the surface-most slice (of the plane, for 2D images); or a depth per
        voxel (e.g. from :func:`deepcontrast.depth.surface_depth`), shaped like the spatial
        axes of the images in their order, one map for all images or a list with one per
        image. With maps (curved samples: spheroids, organoids, embryos), attenuation, blur
        and haze are fitted against each voxel's own depth (:mod:`.depthmap`): slices are cut
        into lateral tiles inside the tissue, pooled by depth; the tissue is the voxels with a
        depth > 0 and the voxels at depth 0 that :func:`deepcontrast.depth.find_tissue` finds
        in the stack (a map is 0 at the surface and in the medium alike, so the medium never
        counts as surface tissue). A flat map (one depth per plane) gives exactly the
        calibration of those slice depths. The attenuation's depth bins are weighed by their
        voxels and its uncertainty is a jackknife over lateral blocks of the tissue
        (:func:`.depthmap.fit_attenuation_map`): it says how much the sample's own structure,
        which varies in amount with depth, can move the fit. Measured on ``synthetic_spheroid``
        (48x192x192, truth attenuation 60 um, blur_rate 0.05, seeds 0-11): attenuation 52-71 um
        (+- 3-10 um), within 15% in 9/12, blur_rate 0.04 (one grid step low) with the true map;
        with the sample's true structure profile divided out 57-63 um; a flat surface keeps the
        defaults (150 um, 0.03) as its slice means start in the black medium.
    microscope : {'auto', 'point-scanning', 'widefield'}
        How the stack was acquired. 'point-scanning' (confocal, two-photon: out-of-focus light
        rejected) or 'widefield' (widefield, spinning disk, light sheet: ``out_of_focus`` is
        fitted) when you know it; 'auto' (default) decides from the data, a weak test (see
        :mod:`deepcontrast.calibration.spectral`), so say it when you know.
        What it does not do: a thin widefield sample has out-of-focus blur that does not grow
        with depth, and pushing it deeper does not emulate it (on a real widefield/confocal pair
        of a thin sample, training on the widefield stack with 'widefield' left its correlation
        with the confocal stack at 0.8912 -> 0.8916); use deconvolution there.
    cls : type or None
        The degradation class to build (default DeepTissueDegradation).
    defaults : DeepTissueDegradation or None
        Values kept for what the data cannot tell (default: the class defaults).

    Returns
    -------
    deg : DeepTissueDegradation
    report : CalibrationReport
        Fitted values with uncertainties, estimated vs defaulted, ``summary()``, ``figure()``,
        ``to_dict()``.

    Raises
    ------
    ValueError
        If no image is given, axes do not match, the images hold NaN/Inf, are constant, or
        are too small (< 16x16 pixels in total usable area); if a depth map has the wrong shape,
        negative or NaN values, holds no tile inside the tissue, or 'auto' comes with a depth.

    Examples
    --------
    >>> from deepcontrast.data import synthetic_tissue  # doctest: +SKIP
    >>> observed, clean = synthetic_tissue()  # doctest: +SKIP
    >>> deg, report = calibrate(observed, 'ZYX', voxel_size=(2, .5, .5))  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    if microscope not in _MICROSCOPES:
        raise ValueError(f"microscope must be one of {', '.join(map(repr, _MICROSCOPES))}, got {microscope!r}")
    if cls is None:
        cls = DeepTissueDegradation
    defaults = cls() if defaults is None else defaults
    stacks, norm_axes, n_images, owner = _load_stacks(images, axes)
    given = dict(zip([a for a in norm_axes if a in "ZYX"], spatial_voxel_size(norm_axes, voxel_size)))
    vs = tuple(given[a] for a in "ZYX" if a in given)  # in the stacks' order: Z (depth), Y, X
    maps, map_info = depth_maps(_as_list(images), norm_axes, tuple(given.values()), surface, depth)
    noise, params = _noise_parameters(stacks)
    has_z = "Z" in norm_axes
    if has_z and max(len(s) for s in stacks) >= 4:
        stats, depths, curved = [], [], []
        for s, i in zip(stacks, owner):
            if maps[i] is None:
                z = defaults.slice_depths(len(s), depth=depth, voxel_size_z=vs[0], surface=surface)
            elif is_flat(maps[i]):  # one depth per plane: exactly the calibration of those slice depths
                z = maps[i][:, 0, 0].astype(float)
            else:
                tissue = tissue_mask(s, maps[i], vs)
                st, z = tile_stats(s, maps[i], vs, noise["offset"], noise, tissue)
                if st is not None:
                    stats.append(st)
                    depths.append(z)
                    curved.append((s, maps[i], tissue))
                continue
            stats.append(slice_stats(s, vs[-2:], noise["offset"], noise, vz=vs[0]))
            depths.append(z)
            curved.append(None)
        if not stats:
            raise ValueError("no tile of the stacks lies inside the tissue the depth map marks; check the depth "
                             "map (0 outside the tissue) or calibrate with a flat surface ('first' or 'last')")
        depth_params, depth_info = _depth_parameters(stats, depths, defaults, microscope, curved, vs,
                                                     noise["offset"])
    else:
        why = ("2D images carry no depth information" if not has_z else "stacks have fewer than 4 slices")
        depth_params = {name: {"value": getattr(defaults, name), "se": None, "estimated": False, "reason": why}
                        for name in _DEPTH_PARAMETERS}
        depth_info = {"has_z": has_z, "profiles": [], "contrast": [], "mode": "unknown"}
    params.update(depth_params)
    params["psf_sigma"] = {"value": defaults.psf_sigma, "se": None, "estimated": False,
                           "reason": "cancels in depth ratios of spectra (needs an image of sub-resolution beads)"}
    deg = defaults.replace(**{k: v["value"] for k, v in params.items()})
    if depth_info.get("stats"):
        stats, depths = depth_info.pop("stats"), depth_info.pop("depths")
        for st, z in zip(stats, depths):
            zz, data, model = contrast_vs_model(st, z, deg)
            depth_info["contrast"].append({"z": zz.tolist(), "data": _finite(data), "model": _finite(model)})
    inputs = {"n_images": n_images, "axes": norm_axes, "voxel_size": list(given.values()), "surface": surface,
              "depth": float(depth) if map_info is None else None,
              "depth_range": _depth_range(stacks, depth, vs, has_z) if map_info is None else map_info["range"],
              "dtype": str(np.asarray(_as_list(images)[0]).dtype)}
    if map_info is not None:
        inputs["depth_map"] = map_info
    report = CalibrationReport(degradation=deg, parameters=params, noise=dict(noise), depth=depth_info,
                               inputs=inputs)
    log.info("calibration:\n%s", report.summary())
    return deg, report


_MICROSCOPES = ("auto", "point-scanning", "widefield")

#: parameters fitted from how the stack changes with depth
_DEPTH_PARAMETERS = ("attenuation_length", "blur_rate", "scattering_length", "out_of_focus", "haze_sigma", "haze_rate")


def _load_stacks(images, axes):
    """Check the images; (list of (n_z, ny, nx) float64 stacks, normalized axes, number of images,
    the image each stack comes from)."""
    imgs = _as_list(images)
    if not imgs:
        raise ValueError("no images given to calibrate from; pass one array or a non-empty list of arrays")
    stacks, norm_axes, owner = [], None, []
    for i, img in enumerate(imgs):
        img, norm_axes = check_image_axes(img, axes, name=f"image {i}")
        if img.size == 0:
            raise ValueError(f"image {i} is empty (shape {img.shape}); give images with pixels to calibrate from")
        parts = _stacks(img, norm_axes)
        stacks.extend(parts)
        owner.extend([i] * len(parts))
    lo = min(float(s.min()) for s in stacks)
    hi = max(float(s.max()) for s in stacks)
    if lo == hi:
        raise ValueError(
            f"the images are constant (all values {lo:g}); there is no noise or structure to calibrate from. "
            "Check the input files, or pass an explicit degradation, e.g. DeepTissueDegradation(photons=50)"
        )
    return stacks, norm_axes, len(imgs), owner


def _noise_parameters(stacks):
    """Mean-variance fit over (up to _MAX_NOISE_PLANES) planes: the noise dict and its parameters."""
    planes = [p for s in stacks for p in s]
    if len(planes) > _MAX_NOISE_PLANES:
        planes = [planes[i] for i in np.linspace(0, len(planes) - 1, _MAX_NOISE_PLANES).astype(int)]
    noise = fit_noise(planes)
    log.info("noise: photons=%s read_noise=%.4g offset=%.4g (%s)", noise["photons"], noise["read_noise"],
             noise["offset"], noise["status"])
    params = {}
    params["photons"] = {"value": noise["photons"], "se": noise["photons_se"], "estimated": noise["status"] == "estimated",
                         "reason": {"estimated": "mean-variance fit",
                                    "read-only": "variance does not grow with intensity: no shot noise detected",
                                    "noise-free": "no noise detected"}[noise["status"]]}
    params["read_noise"] = {"value": noise["read_noise"], "se": noise["read_noise_se"], "estimated": True,
                            "reason": "mean-variance fit: variance at the offset"}
    params["background"] = {"value": noise["offset"], "se": noise.get("offset_se"), "estimated": True,
                            "reason": noise.get("offset_method", "dark level")}
    return noise, params


def _depth_parameters(stats, depths, defaults, microscope="auto", curved=None, vs=None, offset=0.0):
    """Spectral fit (blur, haze, out-of-focus light), then attenuation with the out-of-focus light divided
    out; for stacks with a curved depth map (``curved``: their stack, map and tissue) the attenuation is
    fitted to their voxels' depth profile (:func:`.depthmap.fit_attenuation_map`)."""
    spectral = fit_spectral(stats, depths, defaults, microscope=microscope)
    params = {name: {"value": spectral[name]["value"], "interval": spectral[name].get("interval"),
                     "estimated": spectral[name]["estimated"],
                     "reason": spectral[name].get("reason") or spectral.get("reason") or "spectral fit vs depth"}
              for name in ("blur_rate", "scattering_length", "out_of_focus", "haze_sigma", "haze_rate")}
    w = None
    if spectral["out_of_focus"]["value"]:
        w = defaults.replace(out_of_focus=spectral["out_of_focus"]["value"],
                             scattering_length=spectral["scattering_length"]["value"]).out_of_focus_weight
    profiles = [(z, st["mean"]) for z, st in zip(depths, stats)]
    if curved and any(c is not None for c in curved):
        fitted = {k: v["value"] for k, v in params.items() if k != "out_of_focus"}  # its light: w, above
        model = defaults.replace(**fitted, attenuation_length=None, photons=None, read_noise=0.0, background=0.0)
        entries = [(z, m, st["n_pixels"]) if c is None else voxel_sums(*c, vs, offset, model)
                   for (z, m), st, c in zip(profiles, stats, curved)]
        att = fit_attenuation_map(entries, defaults.attenuation_length, w)
    else:  # slice depths only (flat samples): as ever
        att = fit_attenuation(profiles, defaults.attenuation_length, w)
    params["attenuation_length"] = {"value": att["value"], "se": att["se"], "estimated": att["estimated"],
                                    "reason": att["reason"] + (" (out-of-focus light divided out)" if w else "")}
    if att["estimated"] and "slope_se_jackknife" in att:
        params["attenuation_length"]["se_method"] = (
            f"jackknife over {att['n_blocks']} lateral blocks of the tissue" if att["slope_se_jackknife"] is not None
            else f"weighted regression (only {att['n_blocks']} lateral blocks: no jackknife)")
    info = {"has_z": True, "profiles": [], "contrast": [], "mode": spectral["mode"], "rss": spectral.get("rss"),
            "mode_given": bool(spectral.get("mode_given")),
            "stats": stats, "depths": depths,
            "attenuation": {k: att.get(k) for k in ("z", "mean", "fit", "slope", "slope_se")}}
    return params, info


def _depth_range(stacks, depth, vs, has_z):
    """(shallowest, deepest) depth in um covered by the stacks."""
    n_z = max(len(s) for s in stacks)
    return [float(depth), float(depth + (vs[0] * (n_z - 1) if has_z else 0.0))]


def _finite(a):
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, float)]
