"""The Forward-model widget: sliders for DeepTissueDegradation, live preview, calibration."""
import logging
from dataclasses import fields

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSlider, Label, LineEdit, PushButton, SpinBox
from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QTextEdit

from ..degradation import DeepTissueDegradation
from ..depth import AUTO_SURFACES
from ._layers import connect_while_alive, current_plane, layer_array, layer_axes, layer_voxel_size
from ._plot import figure_canvas

__all__ = ["ForwardModelWidget", "PREVIEW_NAME", "DEPTH_NAME"]

log = logging.getLogger(__name__)

PREVIEW_NAME = "forward model preview"
#: the layer showing each voxel's depth below the tissue's own surface (surface 'auto' or 'auto-last')
DEPTH_NAME = "depth below the surface (um)"
#: where the light enters: an end of Z (flat surface), or that end with the tissue's own surface found
SURFACES = ("first", "last", "auto", "auto-last")
#: slider ranges (min, max); a calibrated value outside a range widens it
_RANGES = {"attenuation_length": (0, 1000), "scattering_length": (0, 1000), "psf_sigma": (0, 3), "blur_rate": (0, 0.3),
           "haze_sigma": (0, 30), "haze_rate": (0, 0.5), "background": (0, 1), "photons": (0, 500),
           "read_noise": (0, 0.5), "out_of_focus": (0, 2)}
#: parameters whose value None (off) is shown as 0 on its slider
_ZERO_IS_NONE = ("attenuation_length", "scattering_length", "photons")
#: preview debounce (ms): the preview is recomputed once the sliders have been still this long
DEBOUNCE_MS = 200


class ForwardModelWidget(Container):
    """The forward model as sliders, with a live preview of the current plane pushed deeper.

    Every parameter of :class:`~deepcontrast.DeepTissueDegradation` has a slider (0 means off,
    i.e. None, for ``attenuation_length``, ``scattering_length`` and ``photons``), plus
    ``extra_depth``, the ``depth`` of the first slice (or of a 2D image), the ``surface`` and
    the noise seed. The preview layer shows ``deg(plane, 'YX', extra_depth, depth=plane depth,
    voxel_size=(Y, X) scale, rng=seed)`` for the plane under the viewer's current position,
    recomputed :data:`DEBOUNCE_MS` after the last change. With ``surface`` 'first' or 'last'
    the plane's depth is ``depth + z * Z scale`` from that end of Z (a flat surface). With
    'auto' ('auto-last') the light enters at the first (last) slice and each voxel's depth
    below the tissue's own, possibly curved, surface is found from the layer
    (:func:`deepcontrast.depth.surface_depth`, once per layer and voxel size): it is shown as
    the layer :data:`DEPTH_NAME` and the preview takes the plane's row of it as a per-pixel
    depth (``depth`` must then be 0). *Calibrate from this layer* fits the model to the layer
    (:meth:`DeepTissueDegradation.calibrate` with the same ``surface`` and ``depth``, in a
    thread), fills the sliders and shows the report and its figure.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer):
        self.viewer = viewer
        self.preview, self.depth_layer, self._depth_cache = None, None, None  # layers this widget adds
        self.layer = ComboBox(label="image", choices=self._image_layers)
        self.axes = LineEdit(label="axes")
        self.params = {f.name: self._slider(f.name, f.default) for f in fields(DeepTissueDegradation)}
        self.extra_depth = FloatSlider(label="extra_depth (um)", min=0, max=200, value=30)
        self.depth = FloatSlider(label="depth of first slice (um)", min=0, max=1000, value=0)
        self.surface = ComboBox(label="surface (light enters at)", choices=SURFACES, value="first")
        self.seed = SpinBox(label="noise seed", min=0, max=2**31 - 1, value=0)
        self.live = CheckBox(text="live preview", value=True)
        self.calibrate_button = PushButton(text="Calibrate from this layer")
        self.message = Label(label="")
        super().__init__(widgets=[self.layer, self.axes, *self.params.values(), self.extra_depth, self.depth,
                                  self.surface, self.seed, self.live, self.calibrate_button, self.message])
        self.report_view = QTextEdit(readOnly=True)
        self.native.layout().addWidget(self.report_view)
        self.figure_view, self.report, self.worker = None, None, None
        self._timer = QTimer(interval=DEBOUNCE_MS, singleShot=True)
        self._timer.timeout.connect(self.update_preview)
        for w in (*self.params.values(), self.extra_depth, self.depth, self.surface, self.seed, self.live, self.axes):
            w.changed.connect(self.schedule_preview)
        self.layer.changed.connect(self._layer_changed)
        connect_while_alive(self, viewer.dims.events.current_step, self.schedule_preview)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed):
            connect_while_alive(self, ev, self._reset_layers)
        self.native.destroyed.connect(self._timer.stop)
        self.calibrate_button.changed.connect(self.calibrate)
        self.layer.reset_choices()
        self._layer_changed(self.layer.value)

    @staticmethod
    def _slider(name, default):
        lo, hi = _RANGES[name]
        value = 0.0 if default is None else float(default)
        return FloatSlider(label=name, min=lo, max=hi, value=value, step=None)

    def _reset_layers(self, event=None):
        self.layer.reset_choices()

    def _image_layers(self, widget=None):
        from napari.layers import Image

        return [(lay.name, lay) for lay in self.viewer.layers
                if isinstance(lay, Image) and lay not in (self.preview, self.depth_layer)
                and lay.name not in (PREVIEW_NAME, DEPTH_NAME)]

    def _layer_changed(self, layer):
        if layer is not None:
            try:
                self.axes.value = layer_axes(layer)
            except ValueError as e:
                self.say(str(e))
            self.schedule_preview()

    def say(self, text):
        """Show ``text`` in the widget's message line (and log it)."""
        self.message.value = text
        log.info("%s", text)

    # ----- the model from the sliders --------------------------------------------------------

    def degradation(self):
        """The :class:`~deepcontrast.DeepTissueDegradation` the sliders describe."""
        values = {k: float(w.value) for k, w in self.params.items()}
        for k in _ZERO_IS_NONE:
            if values[k] <= 0:
                values[k] = None
        return DeepTissueDegradation(**values)

    def set_degradation(self, deg):
        """Set the sliders to the parameters of ``deg`` (widening a slider's range when needed)."""
        for k, v in deg.to_dict().items():
            w = self.params[k]
            v = 0.0 if v is None else float(v)
            if v > w.max:
                w.max = 10 ** float(f"{v:e}".split("e")[1]) * 10
            w.value = v

    def preview_args(self):
        """``(plane, kwargs)``: the current plane and the arguments of its preview degradation call.

        With surface 'auto' or 'auto-last' the depth is the plane's row of :meth:`depth_map`
        (a per-pixel map); otherwise a number.
        """
        layer = self.layer.value
        axes = self.axes.value.strip().upper()
        img = layer_array(layer, axes)
        point = layer.world_to_data(self.viewer.dims.point)
        plane, z = current_plane(img, axes, [round(p) for p in point])
        vs = layer_voxel_size(layer, axes)
        surface = self.surface.value
        if surface in AUTO_SURFACES:
            dmap = self.depth_map(layer, img, axes, vs)
            depth = dmap[z] if z is not None else dmap
            if axes.index("Y") > axes.index("X"):
                depth = depth.T
        else:
            self._drop_depth_layer()
            depth = float(self.depth.value)
            if z is not None:
                n = img.shape[axes.index("Z")]
                k = (n - 1 - z) if surface == "last" else z
                depth += k * vs[0]
        kwargs = dict(depth=depth, voxel_size=vs[-2:], rng=int(self.seed.value))
        return plane, kwargs

    def depth_map(self, layer, img, axes, vs):
        """Each voxel's depth (um) below the tissue's own surface in ``layer`` (surface 'auto' or
        'auto-last'), shaped like its spatial axes in their order, shown as the layer
        :data:`DEPTH_NAME`; computed once per layer data, axes, voxel size and surface."""
        from ..depth import resolve_depth

        key = (id(layer), id(layer.data), axes, vs, self.surface.value, float(self.depth.value))
        if self._depth_cache is None or self._depth_cache[0] != key:
            dmap, _ = resolve_depth(img, axes, voxel_size=vs, surface=self.surface.value,
                                    depth=float(self.depth.value))
            self._depth_cache = (key, dmap)
        dmap = self._depth_cache[1]
        spatial = [i for i, a in enumerate(axes) if a in "ZYX"]
        scale = [layer.scale[i] for i in spatial]
        translate = [layer.translate[i] for i in spatial]
        if self.depth_layer is None or self.depth_layer not in self.viewer.layers:
            self.depth_layer = self.viewer.add_image(dmap, name=DEPTH_NAME, colormap="viridis", blending="additive",
                                                     opacity=0.5, scale=scale, translate=translate)
        elif self.depth_layer.data is not dmap:
            self.depth_layer.data = dmap
            self.depth_layer.scale, self.depth_layer.translate = scale, translate
        return dmap

    def _drop_depth_layer(self):
        """Remove the depth layer (the surface is flat again)."""
        if self.depth_layer is not None and self.depth_layer in self.viewer.layers:
            self.viewer.layers.remove(self.depth_layer)
        self.depth_layer, self._depth_cache = None, None

    # ----- preview ---------------------------------------------------------------------------

    def schedule_preview(self, *args):
        """(Re)start the debounce timer; the preview follows when the sliders are still."""
        if self.live.value:
            self._timer.start()

    def update_preview(self):
        """Recompute the preview layer now; problems are shown in the widget, never raised."""
        if self.layer.value is None:
            return
        try:
            plane, kwargs = self.preview_args()
            out = self.degradation()(plane, "YX", float(self.extra_depth.value), **kwargs)
        except ValueError as e:
            return self.say(str(e))
        layer = self.layer.value
        if self.preview is None or self.preview not in self.viewer.layers:
            self.preview = self.viewer.add_image(out, name=PREVIEW_NAME, contrast_limits=layer.contrast_limits,
                                                 scale=layer.scale[-2:], translate=layer.translate[-2:])
        else:
            self.preview.data = out
            self.preview.scale, self.preview.translate = layer.scale[-2:], layer.translate[-2:]
        d = kwargs["depth"]
        where = f"depth {d:.3g} um" if np.ndim(d) == 0 else f"depths {d.min():.3g}-{d.max():.3g} um below the surface"
        self.say(f"preview: plane at {where}, {float(self.extra_depth.value):.3g} um deeper")

    # ----- calibration -----------------------------------------------------------------------

    def calibrate(self):
        """Fit the model to the layer in a thread, then fill the sliders and show the report."""
        layer = self.layer.value
        if layer is None or self.worker is not None:
            return self.say("no image layer" if layer is None else "calibration is already running")
        try:
            axes = self.axes.value.strip().upper()
            img = layer_array(layer, axes)
            vs = layer_voxel_size(layer, axes)
        except ValueError as e:
            return self.say(str(e))
        surface = self.surface.value
        self.worker = create_worker(DeepTissueDegradation.calibrate, img, axes, voxel_size=vs, surface=surface,
                                    depth=float(self.depth.value), _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(self._calibrated)
        self.worker.errored.connect(lambda e: self.say(f"calibration failed: {e}"))
        self.worker.finished.connect(self._calibration_finished)
        self.calibrate_button.enabled = False
        self.say("calibrating...")
        self.worker.start()

    def _calibration_finished(self):
        self.worker = None
        self.calibrate_button.enabled = True

    def _calibrated(self, result):
        deg, report = result
        self.report = report
        self.set_degradation(deg)
        self.report_view.setPlainText(report.summary())
        if self.figure_view is not None:
            self.figure_view.setParent(None)
        self.figure_view = figure_canvas(report.figure())
        self.native.layout().addWidget(self.figure_view)
        self.say("calibrated: sliders set from the layer (see the report)")
        self.schedule_preview()
