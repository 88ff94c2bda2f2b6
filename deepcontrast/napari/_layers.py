"""What the widgets read from a napari image layer: axes, voxel size, the current plane."""
import numpy as np

from ..internals.axes import check_image_axes

__all__ = ["layer_axes", "layer_voxel_size", "layer_array", "current_plane"]

_GUESS = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}


def layer_axes(layer):
    """Axes string of an image layer: its axis labels when they are axis letters, else a guess.

    Labels such as ``('z', 'y', 'x')`` become ``'ZYX'``; napari's default labels (``'0'``,
    ``'1'``, ...) give the usual guess for the number of dimensions (``'YX'``, ``'ZYX'``,
    ``'CZYX'``). RGB layers are not supported (fluorescence is one channel per layer).
    """
    if getattr(layer, "rgb", False):
        raise ValueError(f"layer {layer.name!r} is RGB; split it into one layer per channel "
                         "(right-click > Split RGB) and restore a single channel")
    labels = [str(a).upper() for a in getattr(layer, "axis_labels", ())]
    if len(labels) == layer.ndim and all(len(a) == 1 and a in "STCZYX" for a in labels) \
            and len(set(labels)) == len(labels):
        return "".join(labels)
    return _GUESS.get(layer.ndim, "")


def layer_voxel_size(layer, axes):
    """Voxel size (um) per spatial axis of ``axes`` (Z, Y, X in their order), from the layer's scale."""
    return tuple(float(s) for a, s in zip(axes, layer.scale) if a in "ZYX")


def layer_array(layer, axes):
    """The layer's data as a checked numpy array (multiscale layers: the full-resolution level)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    img, _ = check_image_axes(np.asarray(data), axes, name=f"layer {layer.name!r}")
    return img


def current_plane(img, axes, point):
    """The YX plane of ``img`` at the viewer's current position, and its Z index (or None).

    Parameters
    ----------
    img : numpy.ndarray
        Image with ``axes``.
    axes : str
        Its axes (must contain Y and X).
    point : sequence of int
        Current index along each axis of ``img`` (napari's ``dims.current_step`` of the layer).

    Returns
    -------
    (numpy.ndarray, int or None)
    """
    index = tuple(slice(None) if a in "YX" else int(np.clip(p, 0, n - 1))
                  for a, p, n in zip(axes, point, img.shape))
    plane = img[index]
    if axes.index("Y") > axes.index("X"):
        plane = plane.T
    z = int(index[axes.index("Z")]) if "Z" in axes else None
    return plane, z


def connect_while_alive(widget, emitter, callback):
    """Connect ``callback`` to the napari event ``emitter`` until the Qt side of ``widget`` is destroyed.

    Viewer events outlive dock widgets (closing the viewer removes every layer after the
    widgets are gone); a callback left connected would reach deleted Qt objects.
    """
    emitter.connect(callback)
    widget.native.destroyed.connect(lambda *_: emitter.disconnect(callback))
