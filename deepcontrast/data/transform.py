"""The forward model as a csbdeep ``Transform``, and the argument checks it shares with
:class:`~deepcontrast.data.DegradedRawData`."""
import logging

import numpy as np
from csbdeep.data import Transform

from ..internals.axes import spatial_voxel_size
from ..internals.checks import check_depth, check_extra_depth, check_surface
from ..degradation import DeepTissueDegradation

log = logging.getLogger(__name__)

__all__ = ["deep_tissue_distortions"]


def deep_tissue_distortions(degradation, extra_depth, *, n_degradations=1, voxel_size=None, surface="first",
                            depth=0.0, yield_target="source", rng=None):
    """Degrade images further with the deep-tissue forward model, as a csbdeep ``Transform``.

    Like :func:`csbdeep.data.anisotropic_distortions`: for every ``(x, y, axes, mask)`` from
    the input generator it yields ``n_degradations`` tuples ``(degraded x, target, axes,
    mask)``, each with its own ``extra_depth`` drawn uniformly from the range. The unmodified
    pair is *not* passed through (an identity pair would teach the network to do nothing).
    Use it to compose the degradation with other transforms in
    :func:`csbdeep.data.create_patches`; :class:`DegradedRawData` is the simpler entry point.

    Parameters
    ----------
    degradation : DeepTissueDegradation or dict
        The forward model (or its parameters, as from ``DeepTissueDegradation.to_dict()``).
    extra_depth : float or (float, float)
        Additional depth in micrometres, or a ``(low, high)`` range sampled uniformly for each
        degraded copy.
    n_degradations : int
        Degraded copies per input image (each with its own draw and noise).
    voxel_size : sequence of float or None
        Micrometres per pixel for each spatial axis of the images (e.g. ``(2, 0.5, 0.5)`` for
        ``'ZYX'``); default 1.
    surface : {'first', 'last'}
        Which end of Z is the tissue surface.
    depth : float
        Depth (um) of the surface-most slice, or of the plane of a 2D image.
    yield_target : {'source', 'target'}
        ``'source'`` (default): the unmodified input image is the target (DeepContrast's
        pairs); ``'target'``: pass the input generator's target through.
    rng : None, int or numpy.random.Generator
        Seeds the extra-depth draws and the noise. A seed (or generator state) is fixed when the
        transform is made, so iterating it again yields the same pairs.

    Returns
    -------
    csbdeep.data.Transform
        With ``size == n_degradations``.

    Raises
    ------
    ValueError
        For a bad degradation, extra_depth, n_degradations, depth, surface or yield_target.

    Examples
    --------
    >>> from csbdeep.data import RawData, create_patches
    >>> from deepcontrast import DeepTissueDegradation
    >>> from deepcontrast.data import deep_tissue_distortions, synthetic_tissue
    >>> img = synthetic_tissue((64, 64), rng=1)[0]
    >>> raw = RawData.from_arrays([img], [img], axes='YX')
    >>> t = deep_tissue_distortions(DeepTissueDegradation(photons=50), (10, 40), n_degradations=2, rng=0)
    >>> X, Y, axes = create_patches(raw, (32, 32), 4, transforms=[t], verbose=False)
    >>> X.shape
    (8, 1, 32, 32)
    """
    deg = as_degradation(degradation, allow_auto=False)
    warn_if_noise_free(deg)
    lo, hi = check_extra_depth(extra_depth)
    n = check_n_degradations(n_degradations)
    depth = check_depth(depth)
    check_surface(surface)
    if yield_target not in ("source", "target"):
        raise ValueError(f"yield_target must be 'source' or 'target', got {yield_target!r}")
    seed = int(np.random.default_rng(rng).integers(2**63))

    def _gen(inputs):
        items = ((x, x if yield_target == "source" else y, axes, mask, depth) for x, y, axes, mask in inputs)
        return degrade_pairs(deg, items, (lo, hi), n, voxel_size, surface, seed)

    return Transform(distortions_name(lo, hi), _gen, n)


def distortions_name(lo, hi):
    return f"Deep-tissue degradation (extra depth {lo:g}-{hi:g} um)" if hi > lo else \
        f"Deep-tissue degradation (extra depth {lo:g} um)"


def degrade_pairs(deg, items, extra_depth, n, voxel_size, surface, seed):
    """``n`` degraded copies of each ``(x, target, axes, mask, depth)``, drawn from one generator seeded by ``seed``."""
    lo, hi = extra_depth
    g = np.random.default_rng(seed)
    for x, target, axes, mask, depth in items:
        for _ in range(n):
            d = draw_extra_depth(g, lo, hi)
            yield deg(x, axes, d, depth=depth, voxel_size=voxel_size, surface=surface, rng=g), target, axes, mask


# -- argument checks shared with DegradedRawData --------------------------------------------
def warn_if_noise_free(deg):
    """Log a warning when training pairs would carry no noise (``photons=None``, ``read_noise=0``).

    Noise decides whether the method helps: a network that never saw noise in its inputs
    cannot tell noise from structure and amplifies it on real images (on the built-in sample,
    3D route, the deepest third came out at 12.65 dB vs 12.84 dB for the raw).
    """
    if deg.photons is None and not deg.read_noise:
        log.warning("the degradation adds no noise (photons=None, read_noise=0): a network trained on noise-free "
                    "inputs gains nothing on noisy raw images. Give photons= (e.g. DeepTissueDegradation(photons=50)) "
                    "or degradation='auto' to estimate your images' noise")
        return True
    return False


def as_degradation(degradation, *, allow_auto=True):
    """A DeepTissueDegradation from an instance, a dict of parameters, or (if allowed) 'auto'."""
    if isinstance(degradation, DeepTissueDegradation):
        return degradation
    if isinstance(degradation, dict):
        return DeepTissueDegradation.from_dict(degradation)
    if isinstance(degradation, str) and degradation == "auto" and allow_auto:
        return "auto"
    hint = ", or 'auto' to calibrate it on the raw images" if allow_auto else ""
    raise ValueError(
        f"degradation must be a DeepTissueDegradation or a dict of its parameters{hint}; got {degradation!r}. "
        "Example: DeepTissueDegradation(photons=50)"
    )


def draw_extra_depth(g, lo, hi):
    return float(g.uniform(lo, hi)) if hi > lo else lo


def check_n_degradations(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n_degradations must be an integer >= 1 (degraded copies per raw image), got {n!r}")
    return int(n)


def check_voxel_size(axes, voxel_size):
    """Voxel size as a list of floats (one per spatial axis) or None; validated against axes."""
    if voxel_size is None:
        return None
    return [float(v) for v in spatial_voxel_size(axes, voxel_size)]
