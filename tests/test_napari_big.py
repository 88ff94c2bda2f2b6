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
