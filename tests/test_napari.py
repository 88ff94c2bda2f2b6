"""The napari plugin (deepcontrast.napari): manifest, sample, Restore and Forward-model widgets.

Headless: tests/conftest.py sets QT_QPA_PLATFORM=offscreen. Where the offscreen platform offers no
OpenGL context, napari's GL capability queries are answered with fixed values (nothing is
rendered in these tests). Models are tiny and created here.
"""
import importlib
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from deepcontrast import DeepTissueDegradation  # noqa: E402
from deepcontrast.metrics import iteration_tradeoff, suggest_n_iter  # noqa: E402

MANIFEST = Path(importlib.import_module("deepcontrast.napari").__file__).with_name("napari.yaml")
RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def viewer(make_napari_viewer, monkeypatch):
    """A napari viewer with the deepcontrast plugin registered (also when not pip-installed)."""
    import npe2

    v = make_napari_viewer()
    from napari._vispy.utils import gl

    try:
        gl.get_gl_extensions()
    except Exception:  # no OpenGL context under QT_QPA_PLATFORM=offscreen
        for name in ("napari._vispy.layers.image", "napari._vispy.layers.base", "napari._vispy.layers.labels",
                     "napari._vispy.canvas"):
            mod = importlib.import_module(name)
            monkeypatch.setattr(mod, "get_max_texture_sizes", lambda: (4096, 2048))
            if hasattr(mod, "get_gl_extensions"):
                monkeypatch.setattr(mod, "get_gl_extensions", lambda: "")
    pm = npe2.PluginManager.instance()
    if "deepcontrast" not in pm:
        pm.register(npe2.PluginManifest.from_file(MANIFEST))
    return v


@pytest.fixture(scope="module")
def sample():
    from deepcontrast.napari._sample import make_sample

    return make_sample((12, 64, 64))


def _tiny_model(tmp_path, axes="YX", name="tiny"):
    from deepcontrast.models import Config, DeepContrast

    cfg = Config(axes, unet_n_depth=1, unet_n_first=4, unet_kern_size=3, train_tensorboard=False)
    model = DeepContrast(cfg, name, basedir=str(tmp_path))
    model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
    return model.logdir


def _add_sample(viewer, sample):
    return [viewer.add_image(data, **meta) for data, meta, _ in sample]


def _restore(qtbot, viewer, folder, layer, n_iter=2, zarr_path=None):
    from deepcontrast.napari import RestoreWidget

    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.model_path.value = folder
    w.layer.value = layer
    w.n_iter.value = n_iter
    if zarr_path is not None:  # where big layers go
        w.zarr_path.value = zarr_path
    w.run()
    return w


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=RUN_TIMEOUT_MS)


def test_manifest_validates_and_names_the_menus():
    from npe2 import PluginManifest

    m = PluginManifest.from_file(MANIFEST)
    m.validate_imports()
    assert m.name == "deepcontrast"
    assert [w.display_name for w in m.contributions.widgets] == ["Restore", "Forward model"]
    assert [s.key for s in m.contributions.sample_data] == ["synthetic_tissue"]


def test_sample_loads_observed_and_clean_truth(viewer):
    from deepcontrast.data import synthetic_tissue
    from deepcontrast.napari._sample import SAMPLE_SHAPE, SAMPLE_VOXEL_SIZE

    viewer.open_sample("deepcontrast", "synthetic_tissue")
    observed, clean = viewer.layers
    expected = synthetic_tissue(SAMPLE_SHAPE, voxel_size=SAMPLE_VOXEL_SIZE, rng=0)
    np.testing.assert_array_equal(observed.data, expected[0])
    np.testing.assert_array_equal(clean.data, expected[1])
    assert tuple(observed.scale) == SAMPLE_VOXEL_SIZE and tuple(observed.axis_labels) == ("z", "y", "x")


def test_restore_layers_equal_predict_iterative_and_plot_holds_tradeoff(viewer, qtbot, tmp_path, sample):
    import tifffile

    from deepcontrast.models import DeepContrast

    observed, _ = _add_sample(viewer, sample)
    folder = _tiny_model(tmp_path)
    w = _restore(qtbot, viewer, folder, observed, n_iter=3)
    assert w.axes.value == "ZYX"
    _wait(qtbot, w)
    expected = DeepContrast(None, folder.name, str(folder.parent)).predict_iterative(observed.data, "ZYX", 3)
    assert [lay.name for lay in w.result_layers] == [f"{observed.name} [iteration {k}]" for k in (1, 2, 3)]
    for lay, x in zip(w.result_layers, expected):
        np.testing.assert_allclose(lay.data, x, atol=1e-5)
        assert tuple(lay.contrast_limits) == tuple(observed.contrast_limits)
        np.testing.assert_array_equal(lay.scale, observed.scale)
    table = iteration_tradeoff(observed.data, expected)
    for col, line in w.plot.lines.items():
        np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2, 3])
        np.testing.assert_allclose(line.get_ydata(), [row[col] for row in table], rtol=1e-4)
    assert w.table_view.rowCount() == 4 and w.table_view.columnCount() == len(table[0])
    # a point of the plot shows its iterate alone
    w.plot.on_select(2)
    assert [lay.visible for lay in [observed] + w.result_layers] == [False, False, True, False]
    assert w.shown.value == 2
    # saving: the shown iterate, atomically; an existing file (or the input) is never overwritten
    out = tmp_path / "restored.tif"
    w.save_path.value = out
    w.save()
    np.testing.assert_array_equal(tifffile.imread(out), w.result_layers[1].data)
    before = out.read_bytes()
    w.shown.value = 3
    w.save()
    assert "exists" in w.message.value and out.read_bytes() == before


def test_residual_layer_follows_the_shown_iteration_and_depth_curves_hold_the_check(viewer, qtbot, tmp_path, sample):
    from deepcontrast.consistency import check_consistency
    from deepcontrast.models import DeepContrast

    observed, _ = _add_sample(viewer, sample)
    folder = _tiny_model(tmp_path)  # records no training degradation: the check calibrates one ('auto')
    w = _restore(qtbot, viewer, folder, observed, n_iter=2)
    _wait(qtbot, w)
    its = DeepContrast(None, folder.name, str(folder.parent)).predict_iterative(observed.data, "ZYX", 2)
    expected = check_consistency(observed.data, its, "ZYX", "auto", voxel_size=(2.0, 0.5, 0.5))
    np.testing.assert_allclose(w.check.report.restored_depth, expected.restored_depth, atol=1e-3)
    # the suggestion is the data-consistency rule's (the widget says which rule chose)
    n, why = suggest_n_iter(iteration_tradeoff(observed.data, its), consistency=expected, explain=True)
    assert w.suggested == max(n, 1) and (why["rule"] in w.message.value or "no restoration" in w.message.value)
    assert why["rule"] != "image statistics" or "note" in why
    res = w.residual_layer
    assert res.name == f"{observed.name} [residual]" and res in viewer.layers and not res.visible
    assert res not in [lay for _, lay in w._image_layers()]  # not offered as an image to restore
    np.testing.assert_array_equal(res.scale, observed.scale)
    order = np.argsort(expected.plane_depth)
    for k in (1, 2):
        w.show_iteration(k)
        assert res.metadata["iteration"] == k
        np.testing.assert_allclose(res.data, expected.residual_map(k), atol=1e-3)
        np.testing.assert_allclose(w.depth_plot.lines[("restored_depth", k)].get_ydata(),
                                   expected.restored_depth[k - 1, order], atol=1e-3)
        np.testing.assert_allclose(w.depth_plot.lines[("chi2", k)].get_xdata(), expected.plane_depth[order])
        assert w.depth_plot.lines[("restored_depth", k)].get_linewidth() > \
            w.depth_plot.lines[("restored_depth", 3 - k)].get_linewidth()  # the shown iteration is bold
    w.show_iteration(0)  # the raw explains itself
    assert not np.any(res.data)
    # a new run replaces the residual layer instead of adding another
    w.run()
    _wait(qtbot, w)
    assert sum("[residual]" in lay.name for lay in viewer.layers) == 1 and res not in viewer.layers


def test_bad_models_are_messages_not_crashes(viewer, qtbot, tmp_path):
    plane = viewer.add_image(np.random.default_rng(0).random((32, 32)).astype(np.float32), name="plane")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    (corrupt / "weights_best.h5").write_bytes(b"not hdf5")
    model3d = _tiny_model(tmp_path, "ZYX", "tiny3d")
    (model3d / "TF_SavedModel.zip").write_bytes(b"PK")  # an export in its model folder: the folder is loaded
    cases = [(model3d, "the model is 3D (ZYX) but the layer's axes 'YX' have no Z"),
             (tmp_path / "missing", "does not exist"),
             (corrupt, "cannot load the model"),
             (model3d / "TF_SavedModel.zip", "have no Z")]
    w = None
    for folder, expected in cases:
        if w is None:
            w = _restore(qtbot, viewer, folder, plane)
        else:
            w.model_path.value = folder
            w.run()
        _wait(qtbot, w)
        assert w.message.value.startswith("failed:") and expected in w.message.value, w.message.value
        assert w.result_layers == [] and len(viewer.layers) == 1
    lone_zip = tmp_path / "elsewhere" / "model.zip"
    lone_zip.parent.mkdir()
    lone_zip.write_bytes(b"PK")
    w.model_path.value = lone_zip
    w.run()
    _wait(qtbot, w)
    assert "without its model folder" in w.message.value


def test_cancel_adds_no_layer_and_allows_a_new_run(viewer, qtbot, tmp_path, sample):
    observed, _ = _add_sample(viewer, sample)
    w = _restore(qtbot, viewer, _tiny_model(tmp_path), observed)
    w.worker.yielded.connect(lambda step: w.cancel())
    _wait(qtbot, w)
    assert w.message.value.startswith("cancelled") and w.result_layers == [] and len(viewer.layers) == 2
    assert w.run_button.enabled


def _forward(viewer, layer):
    from deepcontrast.napari import ForwardModelWidget

    w = ForwardModelWidget(viewer)
    viewer.window.add_dock_widget(w, name="Forward model")
    w.layer.value = layer
    return w


def test_forward_preview_equals_the_model_on_the_current_plane(viewer, qtbot, sample):
    from deepcontrast.napari._forward import PREVIEW_NAME

    observed, _ = _add_sample(viewer, sample)
    viewer.dims.set_point(0, 7 * 2.0)  # slice 7 (Z scale 2 um)
    w = _forward(viewer, observed)
    w.params["photons"].value = 40
    w.params["blur_rate"].value = 0.05
    w.extra_depth.value = 25
    w.depth.value = 10
    w.seed.value = 3
    w.update_preview()
    deg = DeepTissueDegradation(photons=40, blur_rate=0.05)
    expected = deg(observed.data[7], "YX", 25, depth=10 + 7 * 2.0, voxel_size=(0.5, 0.5), rng=3)
    np.testing.assert_allclose(viewer.layers[PREVIEW_NAME].data, expected, rtol=1e-6)
    # a slider change updates the preview after the debounce (photons 0 = no shot noise)
    w.params["photons"].value = 0
    expected = deg.replace(photons=None)(observed.data[7], "YX", 25, depth=24.0, voxel_size=(0.5, 0.5), rng=3)
    qtbot.waitUntil(lambda: np.allclose(viewer.layers[PREVIEW_NAME].data, expected, rtol=1e-6), timeout=5000)


def test_calibrate_fills_the_sliders_with_the_calibrated_values(viewer, qtbot, sample):
    observed, _ = _add_sample(viewer, sample)
    w = _forward(viewer, observed)
    w.calibrate()
    qtbot.waitUntil(lambda: w.worker is None, timeout=RUN_TIMEOUT_MS)
    deg, report = DeepTissueDegradation.calibrate(observed.data, "ZYX", voxel_size=(2.0, 0.5, 0.5))
    for k, v in deg.to_dict().items():
        assert w.params[k].value == pytest.approx(0.0 if v is None else v, rel=1e-3, abs=1e-9), k
    assert w.report_view.toPlainText() == report.summary()
    assert w.figure_view is not None


def test_forward_auto_surface_shows_the_depth_map_and_previews_with_it(viewer, qtbot):
    from deepcontrast.data import synthetic_spheroid
    from deepcontrast.depth import surface_depth
    from deepcontrast.napari._forward import DEPTH_NAME, PREVIEW_NAME

    vs = (2.0, 0.5, 0.5)
    observed, _, truth = synthetic_spheroid((16, 96, 96), voxel_size=vs, rng=1)
    layer = viewer.add_image(observed, name="spheroid", scale=vs)
    viewer.dims.set_point(0, 12 * 2.0)  # slice 12
    w = _forward(viewer, layer)
    w.params["photons"].value = 40
    w.extra_depth.value = 25
    w.seed.value = 3
    w.surface.value = "auto"
    w.update_preview()
    depth_layer = viewer.layers[DEPTH_NAME]
    expected = surface_depth(observed, "ZYX", voxel_size=vs, surface="first")
    np.testing.assert_array_equal(depth_layer.data, expected)
    assert tuple(depth_layer.scale) == vs
    inside = truth > 0  # the map found in the data lies within a voxel of the true depth (median)
    assert np.median(np.abs(depth_layer.data[inside] - truth[inside])) <= vs[0]
    # the preview pushes each pixel of the plane deeper from its own depth
    deg = DeepTissueDegradation(photons=40)
    plane = deg(observed[12], "YX", 25, depth=expected[12], voxel_size=vs[1:], rng=3)
    np.testing.assert_allclose(viewer.layers[PREVIEW_NAME].data, plane, rtol=1e-6)
    assert list(w.layer.choices) == [layer]  # the preview and the depth map are not offered as inputs
    # a flat surface again: the depth layer goes, the plane is at one depth (slice 12 from the first)
    w.surface.value = "first"
    w.update_preview()
    assert DEPTH_NAME not in [lay.name for lay in viewer.layers]
    plane = deg(observed[12], "YX", 25, depth=24.0, voxel_size=vs[1:], rng=3)
    np.testing.assert_allclose(viewer.layers[PREVIEW_NAME].data, plane, rtol=1e-6)


def test_forward_auto_surface_of_a_sample_filling_the_field_is_the_slice_depths(viewer, qtbot):
    from deepcontrast.napari._forward import DEPTH_NAME

    # tissue in every column from the first slice on, dimmer with depth: a flat surface, so each
    # voxel's depth is exactly its slice's, z * 2 um
    rng = np.random.default_rng(0)
    stack = (np.exp(-np.arange(10) / 8.0)[:, None, None] * (1 + 0.2 * rng.random((10, 48, 48)))).astype(np.float32)
    layer = viewer.add_image(stack, name="slab", scale=(2.0, 0.5, 0.5))
    w = _forward(viewer, layer)
    w.surface.value = "auto"
    w.update_preview()
    dmap = viewer.layers[DEPTH_NAME].data
    np.testing.assert_array_equal(dmap, np.broadcast_to(np.arange(10.0)[:, None, None] * 2.0, stack.shape))


def test_forward_auto_surface_with_a_depth_says_what_to_do(viewer, qtbot, sample):
    from deepcontrast.napari._forward import DEPTH_NAME

    observed, _ = _add_sample(viewer, sample)
    w = _forward(viewer, observed)
    w.depth.value = 10
    w.surface.value = "auto"
    w.update_preview()
    assert "leave depth at 0" in w.message.value
    assert DEPTH_NAME not in [lay.name for lay in viewer.layers]
