"""The Restore widget on big (dask-backed, multiscale) layers: blockwise into OME-Zarr, multiscale result."""
import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")
da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

from deepcontrast.data import synthetic_tissue  # noqa: E402
from deepcontrast.models import _pyramid  # noqa: E402
from deepcontrast.napari import _big  # noqa: E402
from test_napari import _restore, _tiny_model, _wait, viewer  # noqa: E402,F401  (tests/ is on sys.path; viewer: fixture)

#: a prediction budget that cuts the 16x64x64 layer into blocks of a few planes (several blocks to count and stop)
SMALL_BUDGET_MB = 2


@pytest.fixture
def big(monkeypatch):
    monkeypatch.setattr(_big, "BIG_VOXELS", 1000)  # a 16x64x64 layer counts as big
    monkeypatch.setattr(_pyramid, "PLANE_SIZE", 16)  # and its output has levels 0, 1, 2
    vol = (synthetic_tissue((16, 64, 64), rng=0)[0] * 1000).astype(np.float32)
    return vol



def test_big_dask_layer_is_restored_into_ome_zarr_and_shown_multiscale(viewer, qtbot, tmp_path, big, monkeypatch):
    folder = _tiny_model(tmp_path)
    raw = viewer.add_image(da.from_array(big, chunks=(4, 32, 32)), name="raw", scale=(2, 0.5, 0.5))
    from deepcontrast.napari import _restore as restore_module

    def never(*args):
        raise AssertionError("a big layer was loaded into memory")

    monkeypatch.setattr(restore_module, "layer_array", never)
    w = _restore(qtbot, viewer, folder, raw, n_iter=2, zarr_path=tmp_path / "out.ome.zarr")
    _wait(qtbot, w)
    assert "done" in w.message.value, w.message.value
    (result,) = w.result_layers
    # Z (2 um) is downsampled once the in-plane voxel has grown to it
    assert result.multiscale and [tuple(a.shape) for a in result.data] == [(16, 64, 64), (16, 32, 32), (16, 16, 16)]
    np.testing.assert_allclose(result.scale, raw.scale)
    from deepcontrast.models import DeepContrast

    model = DeepContrast(None, folder.name, basedir=str(folder.parent))
    ref = model.predict(big, "ZYX", n_iter=2)
    assert np.abs(np.asarray(result.data[0]) - ref).max() <= 0.01 * np.ptp(ref)


def test_big_layer_without_zarr_output_is_a_message(viewer, qtbot, tmp_path, big):
    w = _restore(qtbot, viewer, _tiny_model(tmp_path), viewer.add_image(big, name="raw"), zarr_path=tmp_path / "a.tif")
    assert w.worker is None and "*.zarr" in w.message.value


def test_napari_ome_zarr_opens_every_level(viewer, tmp_path, big):
    pytest.importorskip("napari_ome_zarr")
    from test_blockwise import seeded_model

    seeded_model("YX", 2).predict_blockwise(big, "ZYX", tmp_path / "out.ome.zarr", voxel_size=(2, 0.5, 0.5))
    (layer,) = viewer.open(str(tmp_path / "out.ome.zarr"), plugin="napari-ome-zarr")
    assert layer.multiscale and [tuple(a.shape) for a in layer.data] == [(16, 64, 64), (16, 32, 32), (16, 16, 16)]
    np.testing.assert_allclose(layer.scale, (2, 0.5, 0.5))


def _blocky_model(tmp_path):
    """A tiny YX model whose prediction budget cuts the 16x64x64 layer into several blocks."""
    from deepcontrast.models import Config, DeepContrast

    cfg = Config("YX", unet_n_depth=1, unet_n_first=4, unet_kern_size=3, train_tensorboard=False,
                 predict_memory_mb=SMALL_BUDGET_MB)
    model = DeepContrast(cfg, "blocky", basedir=str(tmp_path))
    model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
    return model.logdir


def _levels(path):
    return [np.asarray(a) for a in _big.multiscale_levels(path)]


def test_big_layer_progress_counts_every_block_then_every_pyramid_chunk(viewer, qtbot, tmp_path, big, monkeypatch):
    from deepcontrast.napari._restore import RestoreWidget

    steps, step = [], RestoreWidget._step
    monkeypatch.setattr(RestoreWidget, "_step", lambda self, s: (steps.append(s), step(self, s)))
    raw = viewer.add_image(da.from_array(big, chunks=(4, 32, 32)), name="raw", scale=(2, 0.5, 0.5))
    w = _restore(qtbot, viewer, _blocky_model(tmp_path), raw, n_iter=2, zarr_path=tmp_path / "out.ome.zarr")
    _wait(qtbot, w)
    assert "done" in w.message.value, w.message.value
    assert steps[:2] == [0, 1]  # loading the model, predicting
    record = zarr.open_group(tmp_path / "out.ome.zarr", mode="r").attrs["deepcontrast"]
    n_blocks = int(np.prod(record["grid"]))
    assert n_blocks >= 4, record["block_size"]
    blocks = [(p.done, p.total) for p in steps[2:] if p.stage == "blocks"]
    chunks = [(p.done, p.total) for p in steps[2:] if p.stage == "pyramid"]
    assert blocks == [(i, n_blocks) for i in range(n_blocks + 1)]  # 0 at the start, then one per block
    n_chunks = chunks[-1][1]
    assert n_chunks >= 2 and chunks == [(i, n_chunks) for i in range(n_chunks + 1)]
    assert [p.stage for p in steps[2:]] == ["blocks"] * (n_blocks + 1) + ["pyramid"] * (n_chunks + 1)
    assert w.progress.value == w.progress.max == n_chunks


def test_big_layer_cancel_stops_between_blocks_and_a_rerun_resumes_to_the_uninterrupted_result(
        viewer, qtbot, tmp_path, big, monkeypatch):
    from deepcontrast.models import DeepContrast, blockwise
    from deepcontrast.napari import RestoreWidget

    folder = _blocky_model(tmp_path)
    model = DeepContrast(None, folder.name, basedir=str(folder.parent))
    ref = tmp_path / "uninterrupted.ome.zarr"
    model.predict_blockwise(big, "ZYX", ref, n_iter=2, voxel_size=(2, 0.5, 0.5))

    raw = viewer.add_image(da.from_array(big, chunks=(4, 32, 32)), name="raw", scale=(2, 0.5, 0.5))
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.model_path.value, w.layer.value, w.n_iter.value = folder, raw, 2
    w.zarr_path.value = out = tmp_path / "out.ome.zarr"
    do_block, written = blockwise._do_block, []

    def cancel_after_three(*args):  # press Cancel as the third block is written (from the run's thread)
        index = do_block(*args)
        written.append(index)
        if len(written) == 3:
            w.worker.quit()
        return index

    monkeypatch.setattr(blockwise, "_do_block", cancel_after_three)
    w.run()
    _wait(qtbot, w)
    monkeypatch.setattr(blockwise, "_do_block", do_block)
    n_blocks = int(np.prod(zarr.open_group(ref, mode="r").attrs["deepcontrast"]["grid"]))
    assert len(written) == 3 < n_blocks  # stopped between blocks, before the end
    assert f"cancelled after 3 of {n_blocks} blocks" in w.message.value and "resume" in w.message.value
    assert str(out) in w.message.value and w.result_layers == [] and len(viewer.layers) == 1
    assert int(zarr.open_group(out, mode="r")["blocks_done"][...].sum()) == 3
    assert w.run_button.enabled

    w.run()  # resumes: only the blocks not written, then the pyramid
    _wait(qtbot, w)
    assert "done" in w.message.value, w.message.value
    assert len(written) == 3
    got, want = _levels(out), _levels(ref)
    assert [a.shape for a in got] == [a.shape for a in want] and len(got) == 3
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(w.result_layers[0].data[0]), want[0])
