"""Train a 2D network on the XY slices of a stack, and apply it to a stack slice by slice.

For anisotropic stacks (Z steps of a few micrometres, pixels of a fraction of one) a 2D
network trained on XY slices learns in a fraction of the time a 3D network needs. The stack
is degraded in 3D (each slice at its own depth), patches of size ``(1, py, px)`` are cut, and
the singleton Z axis is dropped. At prediction time the whole stack is normalized once
(percentiles of the whole stack, as during training) and each slice goes through the network.
"""
import logging

import numpy as np
from csbdeep.data import Normalizer, PercentileNormalizer
from tqdm.auto import tqdm

__all__ = ["squeeze_axis", "StackNormalizer", "SliceWiseModel"]

log = logging.getLogger(__name__)


def squeeze_axis(X, Y, axes, axis="Z"):
    """Drop a singleton ``axis`` from training patches ``X``, ``Y`` with axes ``axes``.

    Parameters
    ----------
    X, Y : numpy.ndarray
        Patches as returned by ``create_patches`` (e.g. axes ``'SCZYX'`` with Z of size 1).
    axes : str
        Axes of ``X`` and ``Y``.
    axis : str
        The axis to drop.

    Returns
    -------
    X, Y : numpy.ndarray
        The patches without ``axis``.
    axes : str
        ``axes`` without ``axis``.

    Raises
    ------
    ValueError
        If ``axis`` is not in ``axes`` or is not of size 1.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((5, 1, 1, 8, 8))
    >>> squeeze_axis(X, X, 'SCZYX')[0].shape
    (5, 1, 8, 8)
    """
    if axis not in axes:
        raise ValueError(f"axis {axis!r} is not in the patch axes {axes!r}")
    i = axes.index(axis)
    if X.shape[i] != 1 or Y.shape[i] != 1:
        raise ValueError(
            f"axis {axis!r} of the patches has size {X.shape[i]}, not 1; cut patches with size 1 along {axis}, "
            "e.g. patch_size=(1, 64, 64)"
        )
    return np.take(X, 0, axis=i), np.take(Y, 0, axis=i), axes.replace(axis, "")


class StackNormalizer(Normalizer):
    """Normalize every slice of a stack with the percentiles of the whole stack.

    The training patches were normalized per stack (CSBDeep normalizes all patches of one
    source image together), so at prediction time deep, dim slices must stay dim: this
    normalizer is fitted once on the whole stack (:meth:`fit`) and then applies the same
    ``mi``/``ma`` to any slice, and undoes it afterwards.

    Parameters
    ----------
    pmin, pmax : float
        Percentiles mapped to 0 and 1 (CSBDeep's defaults 2 and 99.8).

    Examples
    --------
    >>> import numpy as np
    >>> n = StackNormalizer().fit(np.arange(100.0).reshape(4, 5, 5))
    >>> float(n.before(np.full((5, 5), n.mi), 'YX')[0, 0])
    0.0
    """

    def __init__(self, pmin=2, pmax=99.8):
        if not 0 <= pmin < pmax <= 100:
            raise ValueError(f"need 0 <= pmin < pmax <= 100, got pmin={pmin}, pmax={pmax}")
        self.pmin, self.pmax = pmin, pmax
        self.mi = self.ma = None

    def fit(self, stack):
        """Compute ``mi``, ``ma`` from the percentiles of ``stack``; returns ``self``."""
        self.mi = np.float32(np.percentile(stack, self.pmin))
        self.ma = np.float32(np.percentile(stack, self.pmax))
        if not self.ma > self.mi:
            self.ma = np.float32(self.mi + 1)
        return self

    def before(self, x, axes):
        """``(x - mi) / (ma - mi)`` as float32."""
        if self.mi is None:
            raise RuntimeError("StackNormalizer was not fitted; call .fit(stack) first")
        return ((np.asarray(x, np.float32) - self.mi) / (self.ma - self.mi)).astype(np.float32, copy=False)

    def after(self, mean, scale, axes):
        """Undo :meth:`before`."""
        alpha = self.ma - self.mi
        return (alpha * mean + self.mi).astype(np.float32, copy=False), (None if scale is None else alpha * scale)

    @property
    def do_after(self):
        """Always True: outputs are mapped back to the input's intensity range."""
        return True


class SliceWiseModel:
    """Apply a 2D DeepContrast model to a 3D stack, slice by slice.

    Wraps a model whose ``config.axes`` has no Z and offers ``predict`` and
    ``predict_iterative`` for images with a Z axis (other attributes are the wrapped model's).
    The whole stack is normalized once with :class:`StackNormalizer` (percentiles of the
    whole stack, like the training patches) unless another normalizer is given.

    Parameters
    ----------
    model : deepcontrast.models.DeepContrast
        A trained 2D model.

    Examples
    --------
    >>> # doctest: +SKIP
    >>> iterates = SliceWiseModel(model).predict_iterative(stack, 'ZYX', n_iter=3)
    """

    def __init__(self, model):
        if "Z" in model.config.axes:
            raise ValueError(f"SliceWiseModel wraps a 2D model, but the model's axes are {model.config.axes!r}")
        self.model = model

    def __getattr__(self, name):
        return getattr(self.__dict__["model"], name)

    def _normalizer(self, img, normalizer):
        if normalizer is None or type(normalizer) is PercentileNormalizer:
            kw = {} if normalizer is None else dict(pmin=normalizer.pmin, pmax=normalizer.pmax)
            return StackNormalizer(**kw).fit(img)
        return normalizer

    def predict_iterative(self, img, axes, n_iter, normalizer=None, resizer=None, n_tiles=None):
        """Iterative prediction of each slice along Z; returns a list of ``n_iter`` stacks.

        See ``DeepContrast.predict_iterative``; ``n_tiles`` refers to the axes without Z.
        """
        from csbdeep.utils import axes_check_and_normalize

        axes = axes_check_and_normalize(axes, np.ndim(img))
        if "Z" not in axes:
            return self.model.predict_iterative(img, axes, n_iter, **_kw(normalizer, resizer, n_tiles))
        img = np.asarray(img)
        normalizer = self._normalizer(img, normalizer)
        iz = axes.index("Z")
        slice_axes = axes.replace("Z", "")
        out = [np.empty(img.shape, np.float32) for _ in range(n_iter)]
        for k in tqdm(range(img.shape[iz]), desc="predicting slices", unit="slice", leave=False):
            sl = np.take(img, k, axis=iz)
            its = self.model.predict_iterative(sl, slice_axes, n_iter, **_kw(normalizer, resizer, n_tiles))
            for o, it in zip(out, its):
                idx = [slice(None)] * img.ndim
                idx[iz] = k
                o[tuple(idx)] = it
        return out

    def predict(self, img, axes, normalizer=None, resizer=None, n_tiles=None, *, n_iter=1):
        """Prediction after ``n_iter`` iterations (the last of :meth:`predict_iterative`)."""
        return self.predict_iterative(img, axes, n_iter, normalizer=normalizer, resizer=resizer, n_tiles=n_tiles)[-1]


def _kw(normalizer, resizer, n_tiles):
    kw = dict(n_tiles=n_tiles)
    if normalizer is not None:
        kw["normalizer"] = normalizer
    if resizer is not None:
        kw["resizer"] = resizer
    return kw
