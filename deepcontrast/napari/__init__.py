"""napari plugin for deepcontrast (npe2; install with ``pip install "deepcontrast[napari]"``).

Contributes, under *Plugins > deepcontrast*:

* **Restore** (:class:`RestoreWidget`): iterative prediction with a model folder on an image
  layer, one layer per iterate (sharing the raw layer's contrast limits), a trade-off plot
  (contrast gain and detail retention per iteration, suggested iteration marked) whose points
  show their iterate, the check of every iterate against the raw (restored depth and chi2 per
  plane, and a residual-map layer that follows the shown iterate), and an atomic TIFF save of
  the chosen iterate;
* **Forward model** (:class:`ForwardModelWidget`): the parameters of
  :class:`~deepcontrast.DeepTissueDegradation` as sliders with a debounced live preview of
  the current plane pushed deeper, and *Calibrate from this layer*; with the surface 'auto'
  (curved samples) each voxel's depth below the tissue's own surface is shown as a layer;
* the sample **Synthetic tissue** (:func:`make_sample`): observed stack and its clean truth.

The core package never imports this subpackage (nor napari or Qt); napari finds it through
the ``napari.manifest`` entry point (``deepcontrast/napari/napari.yaml``).
"""

__all__ = ["RestoreWidget", "ForwardModelWidget", "make_sample"]

_LAZY = {
    "RestoreWidget": "deepcontrast.napari._restore",
    "ForwardModelWidget": "deepcontrast.napari._forward",
    "make_sample": "deepcontrast.napari._sample",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepcontrast.napari' has no attribute {name!r}")
