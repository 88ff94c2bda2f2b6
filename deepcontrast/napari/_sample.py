"""The built-in synthetic sample as napari layer data."""
from ..data import synthetic_tissue

__all__ = ["make_sample", "SAMPLE_SHAPE", "SAMPLE_VOXEL_SIZE"]

#: full depth range of the package's default sample (48 slices of 2 um), a 64 x 64 um field
SAMPLE_SHAPE = (48, 128, 128)
SAMPLE_VOXEL_SIZE = (2.0, 0.5, 0.5)


def make_sample(shape=SAMPLE_SHAPE, rng=0):
    """The sample :func:`deepcontrast.data.synthetic_tissue` as napari layer data.

    The observed stack (first slice at the tissue surface, Poisson noise) and its clean truth,
    with the voxel size (um) as layer scale and axis labels ``z, y, x``, so the widgets read
    axes and voxel size from the layers. The clean layer shares the observed layer's contrast
    limits.

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)`` of the sample.
    rng : None, int or numpy.random.Generator
        Randomness of the sample (default 0: the same sample every time).

    Returns
    -------
    list of (numpy.ndarray, dict, str)
        napari ``LayerDataTuple``s: observed, then clean.

    Examples
    --------
    >>> (observed, meta, kind), _ = make_sample((8, 32, 32))
    >>> observed.shape, meta['scale'], kind
    ((8, 32, 32), (2.0, 0.5, 0.5), 'image')
    """
    observed, clean = synthetic_tissue(shape, voxel_size=SAMPLE_VOXEL_SIZE, rng=rng)
    limits = (float(observed.min()), float(observed.max()))
    common = dict(scale=SAMPLE_VOXEL_SIZE, axis_labels=("z", "y", "x"), contrast_limits=limits)
    return [
        (observed, dict(name="synthetic tissue (observed)", **common), "image"),
        (clean, dict(name="synthetic tissue (clean truth)", visible=False, **common), "image"),
    ]
