"""The Restore widget: iterative prediction on a layer, the trade-off plot, the check against the raw, saving an iterate."""
import logging
from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit, Label, LineEdit, ProgressBar, PushButton, SpinBox
from napari.qt.threading import create_worker
from qtpy.QtWidgets import QTableWidget, QTableWidgetItem

from .. import metrics
from ..internals.tiff import write_tiff
from ._consistency import RESIDUAL_COLORMAP, RESIDUAL_LIMITS, check_iterates, residual_of
from ._big import (BIG_VOXELS, cancelled_text, check_zarr_output, full_resolution, is_big, multiscale_levels,
                   progress_text, run_blockwise)
from ._layers import connect_while_alive, layer_array, layer_axes, layer_voxel_size
from ._model import check_model_fits, load_model
from ._plot import ConsistencyPlot, TradeoffPlot

__all__ = ["RestoreWidget"]

log = logging.getLogger(__name__)

#: steps of a run, as shown by the progress bar
STEPS = ("loading the model", "predicting", "measuring contrast and detail", "checking the iterates against the raw")


def cached_model(path, axes, cache):
    """The model in folder ``path`` (from ``cache`` unless retrained since), checked to fit ``axes``."""
    folder = Path(path).expanduser().resolve()
    folder = folder if folder.is_dir() else folder.parent
    key = (str(folder), max((f.stat().st_mtime for f in folder.glob("*.h5")), default=None))  # retrained: reload
    model = cache.get(key) or load_model(path)
    cache.clear()
    cache[key] = model
    check_model_fits(model, axes)
    return model


def _run(path, img, axes, n_iter, voxel_size, cache):
    """The worker: yields before each step (where a cancel takes effect), returns the results."""
    yield 0
    model = cached_model(path, axes, cache)
    yield 1
    iterates = []
    for x in model.iter_predict(img, axes, n_iter):  # a cancel takes effect after each iteration
        iterates.append(x)
        yield 1
    yield 2
    table = metrics.iteration_tradeoff(img, iterates)
    yield 3
    return iterates, table, check_iterates(model, img, axes, voxel_size, iterates)


class RestoreWidget(Container):
    """Restore the contrast of an image layer by iterative prediction, and pick the iteration by eye.

    Choose a model folder, an image layer (axes from its axis labels, editable) and ``n_iter``;
    *Restore* runs :meth:`deepcontrast.DeepContrast.predict_iterative` in a thread (the
    viewer stays responsive; *Cancel* takes effect after the current iteration and adds no layer). Each
    iterate becomes a layer ``"<raw> [iteration k]"`` with the raw layer's scale and contrast
    limits, so both the gain and any darkening are visible. The trade-off plot shows
    :func:`deepcontrast.metrics.iteration_tradeoff` (contrast gain, detail retention; the table
    below it every column) with :func:`deepcontrast.metrics.suggest_n_iter` marked (by the
    data-consistency rule when the check below ran; the status line says which rule chose); clicking a
    point (or *show iteration*) shows that iterate. *Save* writes the shown iterate as a float32
    TIFF, atomically, never over the input file or an existing file.

    Each restoration is also checked against the raw data
    (:func:`deepcontrast.consistency.check_consistency`, with the model's training degradation,
    or ``'auto'`` when it records none; voxel size from the layer's scale, the first Z plane at
    the surface): a second plot shows the restored depth and chi2 of every iteration against
    plane depth (the shown iteration bold), and the layer ``"<raw> [residual]"`` (hidden at
    first; blue where the shown iterate holds light the raw cannot explain, red where it lost
    light the raw has, in noise units) follows the shown iteration.

    A layer bigger than :data:`~deepcontrast.napari._big.BIG_VOXELS` (e.g. a whole organ opened
    lazily with napari-ome-zarr, or a dask array) is never loaded: it is restored block by block
    with :meth:`~deepcontrast.DeepContrast.predict_blockwise` into the OME-Zarr folder chosen in
    *big layers to* (with its multiscale pyramid; an unfinished run of the same settings there is
    resumed), and the result is added as a lazy multiscale layer with the raw layer's scale. The
    progress bar counts the blocks, then the pyramid's chunks. *Cancel* takes effect when the current
    block (or chunk) is written: what was written stays in the OME-Zarr folder, and *Restore* with the
    same model, ``n_iter`` and folder resumes from there to the result of an uninterrupted run.
    Small layers work as described above.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (napari passes it when the widget is opened from the Plugins menu).
    """

    def __init__(self, viewer):
        self.viewer = viewer
        self.worker, self.table, self.suggested, self.result_layers = None, None, None, []
        self.check, self.residual_layer = None, None
        self._raw, self._models = None, {}
        self._big = None  # a big layer's run: its output folder and last progress
        self.model_path = FileEdit(mode="d", label="model folder",
                                   tooltip="CSBDeep/DeepContrast model folder (config.json + weights_*.h5)")
        self.layer = ComboBox(label="image", choices=self._image_layers)
        self.axes = LineEdit(label="axes", tooltip="axes of the layer, e.g. YX, ZYX, TZYX (from its axis labels)")
        self.n_iter = SpinBox(label="n_iter", value=3, min=1, max=20)
        self.run_button = PushButton(text="Restore")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=len(STEPS), value=0)
        self.message = Label(label="")
        self.shown = SpinBox(label="show iteration", min=0, max=0, tooltip="0 = raw")
        self.save_path = FileEdit(mode="w", label="save as", filter="*.tif *.tiff")
        self.save_button = PushButton(text="Save shown iteration", enabled=False)
        self.zarr_path = FileEdit(mode="w", label="big layers to", filter="*.zarr",
                                  tooltip=f"layers over {BIG_VOXELS} voxels are restored block by block into this "
                                          "OME-Zarr folder (*.ome.zarr, with a multiscale pyramid), never loaded")
        super().__init__(widgets=[self.model_path, self.layer, self.axes, self.n_iter, self.zarr_path, self.run_button,
                                  self.cancel_button, self.progress, self.message, self.shown,
                                  self.save_path, self.save_button])
        self.plot = TradeoffPlot(on_select=self.show_iteration)
        self.table_view = QTableWidget()
        self.depth_plot = ConsistencyPlot()
        self.native.layout().addWidget(self.plot.canvas)
        self.native.layout().addWidget(self.table_view)
        self.native.layout().addWidget(self.depth_plot.canvas)
        self.layer.changed.connect(self._layer_changed)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.shown.changed.connect(self.show_iteration)
        self.save_button.changed.connect(self.save)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed):
            connect_while_alive(self, ev, self._reset_layers)
        self.layer.reset_choices()
        self._layer_changed(self.layer.value)

    def _reset_layers(self, event=None):
        self.layer.reset_choices()

    def _image_layers(self, widget=None):
        from napari.layers import Image

        ours = self.result_layers + [self.residual_layer]
        return [(lay.name, lay) for lay in self.viewer.layers if isinstance(lay, Image) and lay not in ours]

    def _layer_changed(self, layer):
        if layer is None:
            return
        try:
            self.axes.value = layer_axes(layer)
        except ValueError as e:
            self.say(str(e))

    def say(self, text):
        """Show ``text`` in the widget's message line (and log it)."""
        self.message.value = text
        log.info("%s", text)

    # ----- running ---------------------------------------------------------------------------

    def run(self):
        """Start the iterative prediction (in a thread); problems are shown, never raised."""
        if self.worker is not None:
            return self.say("a restoration is already running; cancel it first")
        layer = self.layer.value
        if layer is None:
            return self.say("no image layer: open an image (or File > Open Sample > deepcontrast)")
        axes, n_iter = self.axes.value.strip().upper(), int(self.n_iter.value)
        try:
            if is_big(layer):  # never loaded: block by block into an OME-Zarr
                out = check_zarr_output(self.zarr_path.value, layer)
                self._raw = (layer, None, axes)
                self._big = {"out": out, "progress": None}
                return self._start(self._done_big, run_blockwise, self.model_path.value, full_resolution(layer),
                                   axes, n_iter, out, layer_voxel_size(layer, axes), self._models)
            img = layer_array(layer, axes)
        except ValueError as e:
            return self.say(str(e))
        self._raw, self._big = (layer, img, axes), None
        self._start(self._done, _run, self.model_path.value, img, axes, n_iter, layer_voxel_size(layer, axes),
                    self._models)

    def _start(self, done, func, *args):
        self.worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True)
        self.worker.yielded.connect(self._step)
        self.worker.returned.connect(done)
        self.worker.errored.connect(lambda e: self.say(f"failed: {e}"))
        self.worker.aborted.connect(self._aborted)
        self.worker.finished.connect(self._finished)
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.worker.start()

    def cancel(self):
        """Stop the running restoration at its next step; nothing is added to the viewer (a big layer's
        output keeps the blocks written, to resume)."""
        if self.worker is not None:
            self.worker.quit()
            unit = "block is written" if self._big is not None else "iteration ends"
            self.say(f"cancelling (takes effect when the current {unit})...")

    def _step(self, step):
        if isinstance(step, int):
            self.progress.max, self.progress.value = len(STEPS), step
            return self.say(f"{STEPS[step]}...")
        self._big["progress"] = step  # a big layer's BlockwiseProgress: blocks, then pyramid chunks
        self.progress.max, self.progress.value = max(1, step.total), step.done
        if self.worker is not None and self.worker.abort_requested:
            return  # keep saying 'cancelling'
        self.say(progress_text(step) + "...")

    def _aborted(self):
        if self._big is not None:
            return self.say(cancelled_text(self._big["progress"], self._big["out"]))
        self.say("cancelled; no layer was added")

    def _finished(self):
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False

    def _remove_results(self):
        for old in self.result_layers + [self.residual_layer]:
            if old is not None and old in self.viewer.layers:
                self.viewer.layers.remove(old)
        self.result_layers, self.residual_layer, self.check = [], None, None

    def _done(self, result):
        iterates, table, check = result
        layer, img, axes = self._raw
        self.progress.max = self.progress.value = len(STEPS)
        self._remove_results()
        self.table = table
        self.suggested, why = metrics.suggest_n_iter(table, consistency=check.report, explain=True)
        if self.suggested == 0:  # no restoration happened: show iteration 1, say so
            self.suggested, choice = 1, "no restoration happened (restored depth about 0 um): showing iteration 1"
        else:
            choice = f"suggested {self.suggested} by {why['rule']}" + (f" ({why['note']})" if why.get("note") else "")
        self.result_layers = [self._add_iterate(layer, x, k) for k, x in enumerate(iterates, 1)]
        self.check = check
        if check.report is not None:
            self.residual_layer = self._add_iterate(layer, residual_of(check, 0, img.shape), 0, visible=False,
                                                    contrast_limits=RESIDUAL_LIMITS, colormap=RESIDUAL_COLORMAP,
                                                    name=f"{layer.name} [residual]")
        self.depth_plot.plot(check.report, check.note)
        self.plot.plot(table, self.suggested)
        self._fill_table(table)
        self.shown.max = len(iterates)
        self.shown.value = self.suggested
        self.show_iteration(self.suggested)
        self.save_button.enabled = True
        self.say(f"done: {len(iterates)} iterations; {choice} (see the plot)"
                 + (f"; {check.note}" if check.note else "; restored depth and chi2 per plane below, residual "
                                                          f"map in {self.residual_layer.name!r}"))

    def _done_big(self, out):
        layer = self._raw[0]
        self.progress.value = self.progress.max
        self._remove_results()
        levels = multiscale_levels(out)
        self.depth_plot.plot(None, "no consistency check for big layers: check a crop with "
                                   "deepcontrast.consistency.check_consistency")
        self.table = self.suggested = None
        self.result_layers = [self._add_iterate(layer, levels, int(self.n_iter.value), multiscale=True)]
        self.shown.max, self.shown.value = 1, 1
        self.show_iteration(1)
        self.save_button.enabled = False
        self.say(f"done: restored block by block into {out} ({len(levels)} levels; it is saved there)")

    def _add_iterate(self, raw, data, k, **extra):
        kw = dict(name=f"{raw.name} [iteration {k}]", scale=raw.scale, translate=raw.translate,
                  contrast_limits=raw.contrast_limits, colormap=raw.colormap.name, axis_labels=raw.axis_labels,
                  blending=raw.blending)
        return self.viewer.add_image(data, **{**kw, **extra})

    def _fill_table(self, table):
        cols = list(table[0])
        self.table_view.setRowCount(len(table))
        self.table_view.setColumnCount(len(cols))
        self.table_view.setHorizontalHeaderLabels(cols)
        for r, row in enumerate(table):
            for c, col in enumerate(cols):
                v = row.get(col)
                self.table_view.setItem(r, c, QTableWidgetItem("-" if v is None else f"{v:.4g}"))

    # ----- choosing and saving -------------------------------------------------------------

    def show_iteration(self, k):
        """Show iteration ``k`` (0 = the raw layer) alone among the raw and its iterates."""
        if not self.result_layers or self._raw is None:
            return
        k = int(min(max(k, 0), len(self.result_layers)))
        raw = self._raw[0]
        for i, lay in enumerate([raw] + self.result_layers):
            if lay in self.viewer.layers:
                lay.visible = i == k
        chosen = ([raw] + self.result_layers)[k]
        if chosen in self.viewer.layers:
            self.viewer.layers.selection.active = chosen
        if self.shown.value != k:
            self.shown.value = k
        self.plot.mark(k)
        self.depth_plot.mark(k)
        if self.residual_layer is not None and self.residual_layer in self.viewer.layers:
            self.residual_layer.data = residual_of(self.check, k, self.residual_layer.data.shape)
            self.residual_layer.metadata["iteration"] = k

    def save(self):
        """Write the shown iterate as a TIFF (atomically; never over the input or an existing file)."""
        k = int(self.shown.value)
        if not self.result_layers or k < 1:
            return self.say("show an iteration (1 or more) to save it; iteration 0 is the raw image")
        if self._raw[1] is None:
            return self.say("a big layer's restoration is already saved in its OME-Zarr folder ('big layers to')")
        path = Path(self.save_path.value).expanduser()
        if path.suffix.lower() not in (".tif", ".tiff"):
            return self.say(f"save as a .tif file, not {path.name!r}")
        source = getattr(self._raw[0].source, "path", None)
        if source and Path(source).expanduser().resolve() == path.resolve():
            return self.say(f"{path} is the input image; choose another file name")
        if path.exists():
            return self.say(f"{path} exists; choose a new file name (nothing is overwritten)")
        write_tiff(path, self.result_layers[k - 1].data, axes=self._raw[2])
        self.say(f"saved iteration {k} to {path}")
