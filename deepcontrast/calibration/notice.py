"""One-line notices about a degradation that will not teach what the user may expect."""
import numpy as np

__all__ = ["blur_increment_notice", "training_blur_notice", "MIN_BLUR_INCREMENT_PX"]

#: below this ballistic blur increment (sigma, in pixels) a network learns no deblurring
MIN_BLUR_INCREMENT_PX = 0.5


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
    px = 1.0 if voxel_size is None else float(min(np.ravel(voxel_size)[-2:]))
    d = float(np.mean(np.ravel(extra_depth)))
    z = float(depth)
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


def training_blur_notice(raw_data):
    """:func:`blur_increment_notice` for the pairs a :class:`~deepcontrast.data.DegradedRawData` makes.

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
    return blur_increment_notice(raw_data.degradation, vs, s["extra_depth"], depth)
