"""The forward model of deep-tissue degradation (pure numpy/scipy, no TensorFlow).

See :class:`DeepTissueDegradation`.
"""
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from .internals.axes import check_image_axes, spatial_voxel_size, to_planes
from .internals.checks import check_number, check_surface
from ._depthmap import blur_mix_map, check_depth_arg
from .internals.filters import blur_mix
from ._noise import POISSON_GAUSS_SWITCH, add_noise  # noqa: F401 (POISSON_GAUSS_SWITCH: documented here)

__all__ = ["DeepTissueDegradation", "slice_depths"]


@dataclass(frozen=True)
class DeepTissueDegradation:
    r"""Approximate forward model of fluorescence imaging deep inside scattering tissue.

    A structure ``x`` imaged at depth ``z`` (micrometres below the tissue surface) is modelled as

    .. math::

        y = a(z)\,\big[\,b(z)\,(x * G_{s_b(z)}) + (1-b(z))\,(x * G_{s_h(z)})\,\big] + \text{background}

    with

    * ``a(z) = exp(-z / attenuation_length)``: loss of signal (excitation and emission),
    * ``b(z) = exp(-z / scattering_length)``: fraction of ballistic (unscattered) light,
    * ``s_b(z)**2 = psf_sigma**2 + (blur_rate * z)**2``: widening of the ballistic PSF,
    * ``s_h(z) = haze_sigma + haze_rate * z``: width of the scattered-light halo,

    where ``G_s`` is an isotropic Gaussian of standard deviation ``s`` micrometres (applied in
    3D for stacks, in 2D for single planes). Poisson shot noise (``photons`` per unit of image
    intensity) and Gaussian read noise (``read_noise``) follow.

    Calling the model on a *raw* image makes it look ``extra_depth`` micrometres deeper: each
    pixel at depth ``z`` receives the *increment* from ``z`` to ``z + extra_depth``:

    .. math::

        y' = r_a\,\big[\,r_b\,(y_0 * G_{\sqrt{s_b(z+d)^2 - s_b(z)^2}}) + (1-r_b)\,(y_0 * G_{s_h(z+d)})\,\big]
             + \text{background},\qquad y_0 = y - \text{background}

    with ``r_a = exp(-d / attenuation_length)`` and ``r_b = exp(-d / scattering_length)``.
    The background (camera offset, autofluorescence) is treated as already present in the raw
    image: it is removed before and restored after the increment, so it is neither attenuated
    nor added twice. Attenuation and the ballistic blur compose exactly (degrading by ``d1``
    then ``d2`` equals ``d1 + d2``); the haze composes exactly in total weight but only
    approximately in shape (a blurred halo of a halo).

    In a stack, slice ``k`` (counted from the surface end, see ``surface``) lies at depth
    ``depth + k * voxel_size_z``; its kernels are those of its own depth (depth-varying lateral
    Gaussians are applied exactly in the DCT domain, one transfer function per slice, with
    reflective borders; the axial part is an exact non-stationary Gaussian along Z). For a
    curved sample give ``depth`` as a map, one depth per voxel (e.g. from
    :func:`deepcontrast.depth.surface_depth`): each voxel then gets the kernels of its own depth.

    Parameters
    ----------
    attenuation_length : float
        Intensity attenuation length in micrometres (default 150, typical of two-photon
        imaging in brain tissue). Must be > 0; ``None`` or ``inf`` disables attenuation.
    scattering_length : float or None
        Length in micrometres over which the ballistic fraction falls by 1/e (default 100).
        ``None`` or ``inf`` disables the scattered-light haze.
    psf_sigma : float
        Standard deviation of the ballistic PSF at the surface, micrometres (default 0.3, a
        high-NA objective).
    blur_rate : float
        Growth of the ballistic PSF width with depth, micrometres per micrometre (default 0.03):
        at 100 um the PSF is about ``sqrt(0.3**2 + 3**2)`` = 3 um wide.
    haze_sigma : float
        Width of the scattered-light halo at the surface, micrometres (default 3).
    haze_rate : float
        Growth of the halo width with depth, micrometres per micrometre (default 0.05).
    background : float
        Constant offset present in the raw images (camera offset, autofluorescence), in image
        intensity units (default 0). It is excluded from attenuation, blur and noise scaling.
    photons : float or None
        Expected photon count per unit of image intensity, setting Poisson shot noise:
        the noise variance is ``signal / photons`` in intensity units (counts above 20 are
        drawn from the Gaussian limit of the Poisson law, same mean and variance). For images normalized to
        about [0, 1], 20-100 is typical. ``None`` (default) disables shot noise.
        :meth:`calibrate` estimates it from your raw images. Training data need noise: a
        network trained on noise-free inputs gains nothing on real (noisy) images, so for
        training use ``degradation='auto'`` (calibrated on your images) or set ``photons``
        (training data made without any noise log a warning).
    read_noise : float
        Standard deviation of additive Gaussian noise, in image intensity units (default 0).
    out_of_focus : float
        Optional axial term for widefield, spinning-disk and light-sheet stacks, where light
        from neighbouring planes is not rejected (default 0: off, a point-scanning
        confocal/two-photon model). When > 0, ``a(z) * w(z) * (x * G_{s_o(z)})`` is added
        inside the brackets above, with ``w(z) = out_of_focus * (1 + z / scattering_length)``
        (constant when scattering_length is None) and ``s_o(z) = 2 * s_h(z)``, a Gaussian in
        3D (along Z too, so it carries light from neighbouring planes; laterally only for 2D
        images). :meth:`calibrate` reports whether a stack looks point-scanning or widefield.

    Notes
    -----
    **The out-of-focus increment used for training** is the model's own: from ``z`` to
    ``z + d`` it adds ``(w(z+d) - w(z)) / (1 + w(z))`` of out-of-focus light
    (:meth:`out_of_focus_increment`), so mean intensities compose exactly (``d1`` then ``d2``
    equals ``d1 + d2``). A larger increment, one whole out-of-focus pass at the new depth
    (``w(z+d)`` of the light), was tried: on a ``synthetic_tissue`` render with
    ``out_of_focus=1`` it reached the same deepest-third PSNR as this increment with a lower
    correlation to the confocal render (0.946 vs 0.963), and on a confocal render that
    calibration mistook for widefield (``out_of_focus`` fitted at 3) it added 4 to 5 times
    the signal as haze and trained a network that darkened every iteration.

    Examples
    --------
    >>> import numpy as np
    >>> from deepcontrast import DeepTissueDegradation
    >>> deg = DeepTissueDegradation(photons=50)
    >>> stack = np.random.default_rng(0).random((8, 64, 64)).astype(np.float32)
    >>> deeper = deg(stack, 'ZYX', extra_depth=30, voxel_size=(2, 0.5, 0.5), rng=0)
    >>> deeper.shape, deeper.dtype
    ((8, 64, 64), dtype('float32'))
    """

    attenuation_length: float = 150.0
    scattering_length: float = 100.0
    psf_sigma: float = 0.3
    blur_rate: float = 0.03
    haze_sigma: float = 3.0
    haze_rate: float = 0.05
    background: float = 0.0
    photons: float = None
    read_noise: float = 0.0
    out_of_focus: float = 0.0

    def __post_init__(self):
        for name in ("attenuation_length", "scattering_length"):
            v = getattr(self, name)
            if v is None:
                continue
            check_number(v, name, None, allow_inf=True)
            if not v > 0:
                raise ValueError(f"{name} must be > 0 micrometres (or None to disable it), got {v}")
        for name in ("psf_sigma", "blur_rate", "haze_sigma", "haze_rate", "read_noise", "out_of_focus"):
            v = getattr(self, name)
            check_number(v, name, None)
            if v < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        check_number(self.background, "background", None)
        if self.photons is not None:
            check_number(self.photons, "photons", None)
            if not self.photons > 0:
                raise ValueError(f"photons must be > 0 (or None to disable shot noise), got {self.photons}")

    # -- the model as functions of depth ---------------------------------------------------
    def attenuation(self, z):
        """Signal fraction ``a(z) = exp(-z / attenuation_length)`` at depth ``z`` (um)."""
        return np.exp(-np.asarray(z, float) / _length(self.attenuation_length))

    def ballistic_fraction(self, z):
        """Unscattered fraction ``b(z) = exp(-z / scattering_length)`` at depth ``z`` (um)."""
        return np.exp(-np.asarray(z, float) / _length(self.scattering_length))

    def psf_width(self, z):
        """Ballistic PSF sigma ``s_b(z) = sqrt(psf_sigma^2 + (blur_rate z)^2)`` in um."""
        z = np.asarray(z, float)
        return np.sqrt(self.psf_sigma**2 + (self.blur_rate * z) ** 2)

    def haze_width(self, z):
        """Halo sigma ``s_h(z) = haze_sigma + haze_rate z`` in um."""
        return self.haze_sigma + self.haze_rate * np.asarray(z, float)

    def out_of_focus_weight(self, z):
        """Out-of-focus weight ``w(z) = out_of_focus * (1 + z / scattering_length)``."""
        return self.out_of_focus * (1 + np.asarray(z, float) / _length(self.scattering_length))

    def out_of_focus_increment(self, z, extra_depth):
        """Weight of the out-of-focus light :meth:`__call__` adds at depth ``z``.

        ``(w(z + d) - w(z)) / (1 + w(z))`` for ``d = extra_depth``: the model's own increment
        (see the class Notes); 0 everywhere when ``out_of_focus`` is 0.
        """
        z = np.asarray(z, float)
        return (self.out_of_focus_weight(z + extra_depth) - self.out_of_focus_weight(z)) / (1 + self.out_of_focus_weight(z))

    @classmethod
    def calibrate(cls, images, axes, *, voxel_size=None, surface="first", depth=0.0, microscope="auto"):
        """Fit the model to your own raw images: noise, attenuation, blur, haze, mode.

        Delegates to :func:`deepcontrast.calibration.calibrate` (see there for the methods,
        the defaults used when the data cannot tell, and the report).

        Parameters
        ----------
        images : numpy.ndarray or list of numpy.ndarray
            Raw images (any real dtype, with or without camera offset), all with ``axes``.
        axes : str
            Axes of each image, e.g. ``'YX'`` or ``'ZYX'``.
        voxel_size, surface, depth
            As in :meth:`__call__`; needed to turn slice indices into depths. ``depth`` may
            also be a per-voxel map (or a list, one per image) and ``surface`` 'auto' or
            'auto-last' (each voxel's depth below the surface found in the stack): curved samples.
        microscope : {'auto', 'point-scanning', 'widefield'}
            How the stack was acquired, when you know it (see
            :func:`deepcontrast.calibration.calibrate`).

        Returns
        -------
        (DeepTissueDegradation, deepcontrast.calibration.CalibrationReport)

        Raises
        ------
        ValueError
            If no image is given, axes do not match, or the images are constant.

        Examples
        --------
        >>> deg, report = DeepTissueDegradation.calibrate(stack, 'ZYX', voxel_size=(2, .5, .5))  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        """
        from .calibration import calibrate

        return calibrate(images, axes, voxel_size=voxel_size, surface=surface, depth=depth, microscope=microscope,
                         cls=cls)

    def to_dict(self):
        """The parameters as a JSON-serializable dict (``inf`` lengths become ``None``)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and math.isinf(v):
                d[k] = None
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; unknown keys raise a ValueError naming them."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown degradation parameters {sorted(unknown)}; known are {sorted(names)}")
        return cls(**d)

    def replace(self, **changes):
        """A copy with some parameters changed, e.g. ``deg.replace(photons=30)``."""
        d = asdict(self)
        d.update(changes)
        return type(self)(**d)

    def slice_depths(self, n, *, depth=0.0, voxel_size_z=1.0, surface="first"):
        """Depth (um) of each of ``n`` slices along Z: :func:`slice_depths` (the model's parameters play no part)."""
        return slice_depths(n, depth=depth, voxel_size_z=voxel_size_z, surface=surface)

    # -- applying it ----------------------------------------------------------------------
    def __call__(self, img, axes, extra_depth, *, depth=0.0, voxel_size=None, surface="first", rng=None):
        """Make ``img`` look as if imaged ``extra_depth`` micrometres deeper.

        Parameters
        ----------
        img : numpy.ndarray
            Raw image, any real dtype; never modified.
        axes : str
            Axes of ``img`` (e.g. ``'YX'``, ``'ZYX'``, ``'CZYX'``, ``'SYX'``). Z, Y, X are
            spatial; channels C are degraded independently, S and T are independent images.
        extra_depth : float
            Additional depth in micrometres (>= 0).
        depth : float or numpy.ndarray
            Depth (um) of the surface-most slice, or of the plane for a 2D image (default 0).
            For a 2D image it matters: the blur increment grows with the depth the image
            was taken at. Or a depth per voxel (>= 0 um), shaped like the spatial axes of
            ``img`` in their order (e.g. from :func:`deepcontrast.depth.surface_depth` for a
            curved sample); each voxel then gets the kernels of its own depth (the model runs
            at a few bin depths, each voxel interpolating linearly between its two neighbouring
            bins) and ``surface`` plays no part. A map with one depth per plane gives exactly
            the result of the same depths given as numbers.
        voxel_size : sequence of float or None
            Micrometres per pixel for each spatial axis in the order they appear in ``axes``
            (e.g. ``(2, 0.5, 0.5)`` for ``'ZYX'``); default 1 for every axis.
        surface : {'first', 'last'}
            Which end of Z is the tissue surface.
        rng : None, int or numpy.random.Generator
            Randomness for the noise.

        Returns
        -------
        numpy.ndarray
            float32 array of the same shape as ``img``.

        Raises
        ------
        ValueError
            If axes do not match ``img``, ``img`` holds NaN/Inf, ``extra_depth`` or ``depth``
            is negative (or a depth map has the wrong shape or NaN/Inf), or ``voxel_size`` has
            the wrong length.
        """
        img, axes = check_image_axes(img, axes)
        d = check_number(extra_depth, "extra_depth")
        if d < 0:
            raise ValueError(f"extra_depth must be >= 0 micrometres, got {extra_depth}")
        depth = check_depth_arg(depth, img.shape, axes)
        vs = spatial_voxel_size(axes, voxel_size)
        out = self._apply(img, axes, vs, self._increment(d), depth, surface, offset=self.background)
        return self._add_noise(out, rng)

    def render(self, clean, axes, *, depth=0.0, voxel_size=None, surface="first", rng=None):
        """Image a clean structure through the full model (from the surface to each depth).

        Used to make synthetic data with known truth: slice ``k`` of ``clean`` is seen
        through ``a(z_k)``, ``b(z_k)``, ``s_b(z_k)`` and ``s_h(z_k)``, then ``background`` and
        noise are added. Parameters as in :meth:`__call__`; with a per-voxel ``depth`` map
        each voxel is seen through the model at its own depth.

        Returns
        -------
        numpy.ndarray
            float32, same shape as ``clean``.
        """
        clean, axes = check_image_axes(clean, axes)
        depth = check_depth_arg(depth, clean.shape, axes)
        vs = spatial_voxel_size(axes, voxel_size)

        def params(z):
            s_h = self.haze_width(z)
            return (self.attenuation(z), self.ballistic_fraction(z), self.psf_width(z), s_h, 2 * s_h,
                    self.out_of_focus_weight(z))

        out = self._apply(clean, axes, vs, params, depth, surface, offset=0.0)
        out += np.float32(self.background)
        return self._add_noise(out, rng)

    # -- internals ------------------------------------------------------------------------
    def _increment(self, d):
        """Depths ``z`` (um, 1D) -> the filter arguments of the increment from ``z`` to ``z + d``:
        ``(ra, rb, s_ball, s_haze, s_oof, w_oof)``, arrays like ``z`` (see :func:`~deepcontrast.internals.filters.blur_mix`)."""

        def params(z):
            ra = float(np.exp(-d / _length(self.attenuation_length)))
            rb = float(np.exp(-d / _length(self.scattering_length)))
            s_ball = self.blur_rate * np.sqrt(np.maximum(2 * z * d + d * d, 0.0))
            s_haze = self.haze_width(z + d)
            return np.full_like(z, ra), np.full_like(z, rb), s_ball, s_haze, 2 * s_haze, self.out_of_focus_increment(z, d)

        return params

    def _apply(self, img, axes, vs, params, depth, surface, offset):
        x, restore = to_planes(img.astype(np.float32, copy=False), axes, "ZYX")  # no copy for float32 input
        has_z = "Z" in axes
        if not has_z:  # 2D planes: give them a singleton Z at `depth`
            x = x[:, None]
        size = dict(zip((a for a in axes if a in "ZYX"), vs))  # voxel_size follows the order of axes
        vsz, vyx = size.get("Z", 1.0), (size["Y"], size["X"])
        check_surface(surface)
        if np.ndim(depth) == 0:
            z = slice_depths(x.shape[1], depth=depth, voxel_size_z=vsz, surface=surface)
            ra, rb, s_ball, s_haze, s_oof, w_oof = params(z)
        out = None
        for i in range(len(x)):
            src = x[i] - np.float32(offset) if offset else x[i]  # never modify the caller's array
            if np.ndim(depth):  # a depth per voxel (Z, Y, X)
                res = blur_mix_map(src, depth, params, vsz, vyx, axial=has_z)
            else:
                res = blur_mix(src, ra, rb, s_ball, s_haze, vsz, vyx, axial=has_z, s_oof=s_oof, w_oof=w_oof)
            if out is None:
                out = np.empty(x.shape, np.float32) if len(x) > 1 else res[None]
            if len(x) > 1:
                out[i] = res
        if offset:
            out += np.float32(offset)
        if not has_z:
            out = out[:, 0]
        return np.ascontiguousarray(restore(out))

    def _add_noise(self, out, rng):
        return add_noise(out, self.photons, self.read_noise, self.background, rng)


def slice_depths(n, *, depth=0.0, voxel_size_z=1.0, surface="first"):
    """Depth (um) below the tissue surface of each of ``n`` slices along Z.

    Parameters
    ----------
    n : int
        Number of slices.
    depth : float
        Depth (um) of the surface-end slice.
    voxel_size_z : float
        Slice spacing (um).
    surface : {'first', 'last'}
        Which end of Z is the tissue surface.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 depths, in slice order.

    Examples
    --------
    >>> slice_depths(3, depth=10, voxel_size_z=2, surface='last')
    array([14., 12., 10.])
    """
    check_surface(surface)
    z = depth + voxel_size_z * np.arange(n, dtype=float)
    return z if surface == "first" else z[::-1]


def _length(v):
    return np.inf if v is None else float(v)
