"""One-line notices about a degradation that will not teach what the user may expect.

* :func:`nothing_to_restore_notice`: the model has no depth-dependent blur, haze or
  out-of-focus light at all (e.g. a calibration that found ``blur_rate`` 0 and no scattering):
  training pairs differ only by attenuation and noise, so every iterate will look like the
  raw. Issue 20 met it on a real light-sheet stack: 3.5 minutes of training, every iterate
  equal to the raw, and the only hint a note inside the calibration table.
* :func:`blur_increment_notice`: the blur increment is below half a pixel (no deblurring).

:func:`training_blur_notice` gives the first that applies to a
:class:`~deepcontrast.data.DegradedRawData`; the calibration report, ``deepcontrast datagen``
and the demo print it before training.
"""
import numpy as np

__all__ = ["blur_increment_notice", "nothing_to_restore_notice", "restoration_notice", "training_blur_notice",
           "MIN_BLUR_INCREMENT_PX", "NO_BLUR_PX", "NO_HAZE_FRACTION"]

#: below this ballistic blur increment (sigma, in pixels) a network learns no deblurring
MIN_BLUR_INCREMENT_PX = 0.5
#: below this ballistic blur increment (sigma, in pixels) the model adds no blur at all
NO_BLUR_PX = 0.1
#: below this fraction of the light moved into the haze (or added as out-of-focus light) it adds no haze
NO_HAZE_FRACTION = 0.02


def nothing_to_restore_notice(deg, voxel_size, extra_depth, depth):
    """One line saying so when the model has no depth-dependent blur or haze to undo, else None.

    Going from depth ``z`` to ``z + d`` (``d`` the middle of the extra-depth range) the model
    adds a ballistic blur of width ``blur_rate * sqrt(2 z d + d^2)``, moves the fraction
    ``1 - exp(-d / scattering_length)`` of the ballistic light into the haze, and adds
    out-of-focus light (:meth:`~deepcontrast.degradation.DeepTissueDegradation.out_of_focus_increment`).
    When the blur is under :data:`NO_BLUR_PX` (0.1) pixel and both fractions under
    :data:`NO_HAZE_FRACTION` (2%), a training pair differs only by attenuation (which
    normalization removes) and noise: the network can learn denoising at most, and every
    iterate will look like the raw. The line names what would change that.

    Parameters
    ----------
    deg, voxel_size, extra_depth, depth
        The training degradation (e.g. calibrated) and where to judge it, as in
        :func:`blur_increment_notice`.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from deepcontrast import DeepTissueDegradation
    >>> deg = DeepTissueDegradation(blur_rate=0.0, scattering_length=None)
    >>> print(nothing_to_restore_notice(deg, (1.0, 1.0), (10, 40), 50.0))  # doctest: +ELLIPSIS
    nothing to restore: the forward model has no depth-dependent blur or haze ...
    """
    px, d, z = _where(voxel_size, extra_depth, depth)
    if d <= 0:
        return None
    s_inc = deg.blur_rate * np.sqrt(2 * z * d + d * d)
    haze = 0.0 if deg.scattering_length is None else float(1 - np.exp(-d / float(deg.scattering_length)))
    oof = float(np.max(deg.out_of_focus_increment(z, d)))
    if s_inc >= NO_BLUR_PX * px or haze >= NO_HAZE_FRACTION or oof >= NO_HAZE_FRACTION:
        return None
    scat = "None" if deg.scattering_length is None else f"{deg.scattering_length:g} um"
    return (f"nothing to restore: the forward model has no depth-dependent blur or haze (blur_rate {deg.blur_rate:.2g}: "
            f"{s_inc / px:.2g} px over {d:g} um of extra depth at {z:g} um deep; scattering_length {scat}), so training "
            "pairs differ only by attenuation and noise and every iterate will look like the raw; check voxel_size "
            "(um per pixel, Z first) and surface (which end of Z the light enters), or give the blur and haze you "
            "know, e.g. deg.replace(blur_rate=0.03, scattering_length=100) (datagen: --photons instead of --calibrate)")


def restoration_notice(deg, voxel_size, extra_depth, depth):
    """:func:`nothing_to_restore_notice` if it applies, else :func:`blur_increment_notice` (str or None)."""
    return (nothing_to_restore_notice(deg, voxel_size, extra_depth, depth)
            or blur_increment_notice(deg, voxel_size, extra_depth, depth))


def blur_increment_notice(deg, voxel_size, extra_depth, depth):
    """One line saying so when the training blur increment is below about half a pixel, else None.

    The ballistic blur increment from depth ``z`` to ``z + d`` has the width
    ``blur_rate * sqrt(2 z d + d^2)`` (um). When the typical pair (``d`` the middle of the
    extra-depth range) gets less than ``MIN_BLUR_INCREMENT_PX`` (0.5) pixel at the lateral pixel size, training pairs differ
    only by attenuation, haze and noise: the network learns denoising and contrast, not
    deblurring. The line names the ``blur_rate`` that would reach half a pixel.

    Parameters
    ----------
    deg : DeepTissueDegradation
        The training degradation.
    voxel_size : sequence of float or None
        Micrometres per pixel per spatial axis, ending with Y and X (``None``: 1 um).
    extra_depth : float or (float, float)
        Extra depth (um) of the training pairs, or its range.
    depth : float
        Depth (um) at which to judge: the plane of a 2D image, the middle of a stack.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from deepcontrast import DeepTissueDegradation
    >>> print(blur_increment_notice(DeepTissueDegradation(), (2.0, 2.0), (10, 40), 0.0))  # doctest: +ELLIPSIS
    blur increment 0.75 um = 0.38 px ...
    """
    px, d, z = _where(voxel_size, extra_depth, depth)
    if d <= 0:
        return None
    path = np.sqrt(2 * z * d + d * d)
    s_inc = deg.blur_rate * path
    if s_inc >= MIN_BLUR_INCREMENT_PX * px:
        return None
    need = MIN_BLUR_INCREMENT_PX * px / path
    return (f"blur increment {s_inc:.2g} um = {s_inc / px:.2g} px (< {MIN_BLUR_INCREMENT_PX} px at {px:g} um pixels, "
            f"extra depth {d:g} um at {z:g} um deep): the network will learn denoising and contrast, not deblurring; "
            f"check voxel_size and depth, or raise extra_depth or blur_rate (e.g. deg.replace(blur_rate={need:.2g}))")


def _where(voxel_size, extra_depth, depth):
    """(lateral pixel size um, typical extra depth um, depth um) at which a notice judges."""
    px = 1.0 if voxel_size is None else float(min(np.ravel(voxel_size)[-2:]))
    return px, float(np.mean(np.ravel(extra_depth))), float(depth)


def training_blur_notice(raw_data):
    """:func:`restoration_notice` for the pairs a :class:`~deepcontrast.data.DegradedRawData` makes.

    Says "nothing to restore" when its degradation has no depth-dependent blur or haze
    (:func:`nothing_to_restore_notice`), else warns of a sub-pixel blur increment
    (:func:`blur_increment_notice`).

    Judged at the middle depth of its first image (the plane's depth for 2D images), its
    lateral pixel size and the middle of its extra-depth range.

    Returns
    -------
    str or None
    """
    s = raw_data.settings
    axes, vs = s["axes"], s.get("voxel_size")
    spatial = [a for a in axes if a in "ZYX"]
    depth = float(s.get("depth", 0.0))
    if "Z" in spatial and getattr(raw_data, "shapes", None):
        n_z = raw_data.shapes[0][axes.index("Z")]
        vz = 1.0 if vs is None else float(vs[spatial.index("Z")])
        depth += vz * (n_z - 1) / 2
    return restoration_notice(raw_data.degradation, vs, s["extra_depth"], depth)
