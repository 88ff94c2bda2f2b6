"""Blockwise prediction: equal to in-memory prediction, resumable, safe with bad input and faults."""
import functools

import numpy as np
from csbdeep.data import PercentileNormalizer
import pytest

pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")
import tifffile  # noqa: E402
import zarr  # noqa: E402

from deepcontrast.data import synthetic_tissue  # noqa: E402
from deepcontrast.models import Config, DeepContrast  # noqa: E402
from deepcontrast.models.predict import TILE_TOLERANCE  # noqa: E402

#: models whose prediction keeps iterates physical (each plane's light kept, so blocks span whole Y-X planes):
#: the 3D tests that cut Y and X into blocks compare the bare network
PHYSICAL = hasattr(DeepContrast, "_floor")
BARE = {"physical": False} if PHYSICAL else {}


def seeded_model(axes, rng, **kw):
    """A tiny untrained network with weights drawn from ``rng`` (reproducible, non-trivial output)."""
    cfg = Config(axes, unet_n_depth=1, unet_n_first=4, unet_kern_size=3, train_tensorboard=False, **kw)
    model = DeepContrast(cfg, basedir=None)
    rng = np.random.default_rng(rng)
    model.keras_model.set_weights([rng.normal(0, 1 / np.sqrt(max(1, np.prod(w.shape[:-1]))), w.shape).astype(np.float32)
                                   for w in model.keras_model.get_weights()])
    return model


@pytest.fixture(scope="module")
def model3d():
    model = seeded_model("ZYX", 1, normalize_per_slice=False)  # whole-volume normalization (per plane: below)
    model.predict_blockwise = functools.partial(model.predict_blockwise, physical=False)  # blocks < volume
    return model


@pytest.fixture(scope="module")
def model2d():
    return seeded_model("YX", 2, normalize_per_slice=True)


@pytest.fixture(scope="module")
def volume():
    return (synthetic_tissue((16, 64, 64), rng=0)[0] * 1000).astype(np.uint16)


def rel_dev(a, b):
    return float(np.abs(np.asarray(a) - b).max() / (b.max() - b.min()))


@pytest.mark.parametrize("n_iter", [1, 3])
def test_3d_from_tiff_equals_in_memory(model3d, volume, tmp_path, n_iter):
    tifffile.imwrite(tmp_path / "raw.tif", volume, tile=(32, 32))
    out = model3d.predict_blockwise(str(tmp_path / "raw.tif"), "ZYX", tmp_path / "out.zarr", n_iter=n_iter,
                                    block_size=(8, 32, 32))
    ref = model3d.predict(volume, "ZYX", n_iter=n_iter, **BARE)
    assert out.shape == volume.shape and out.dtype == np.float32
    assert rel_dev(out[...], ref) <= TILE_TOLERANCE


@pytest.mark.parametrize("n_iter", [1, 3])
def test_per_plane_2d_from_zarr_equals_in_memory(model2d, volume, tmp_path, n_iter):
    z = zarr.open_array(tmp_path / "raw.zarr", mode="w", shape=volume.shape, chunks=(4, 32, 32), dtype=volume.dtype)
    z[...] = volume
    out = model2d.predict_blockwise(z, "ZYX", tmp_path / "out.zarr", n_iter=n_iter, block_size=(5, 32, 32),
                                    save_all_iterations=True)
    refs = model2d.predict_iterative(volume, "ZYX", n_iter)
    assert rel_dev(out[...], refs[-1]) <= TILE_TOLERANCE
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    for k in range(1, n_iter):
        assert rel_dev(group[f"iter{k}"]["0"][...], refs[k - 1]) <= TILE_TOLERANCE


def test_global_normalization_is_stored_and_per_plane(model2d, volume, tmp_path):
    model2d.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", block_size=(4, 64, 64))
    rec = zarr.open_group(tmp_path / "out.zarr", mode="r").attrs["deepcontrast"]
    mi = np.asarray(rec["mi"]).ravel()
    assert rec["per_sample"] and mi.shape == (16,)
    np.testing.assert_allclose(mi, np.percentile(volume, 2, axis=(1, 2)), rtol=1e-6)


def test_ome_zarr_metadata_read_by_ome_zarr(model3d, volume, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    model3d.predict_blockwise(volume, "ZYX", tmp_path / "out.ome.zarr", voxel_size=(2, 0.5, 0.5))
    node = list(Reader(parse_url(str(tmp_path / "out.ome.zarr")))())[0]
    assert [a["name"] for a in node.metadata["axes"]] == ["z", "y", "x"]
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == [2, 0.5, 0.5]
    assert node.data[0].shape == volume.shape


class FailingStore(zarr.storage.LocalStore):
    """A local store whose writes of output chunks fail after ``budget`` blocks' worth of chunks."""

    def __init__(self, root, budget):
        super().__init__(root)
        self.budget = budget

    async def set(self, key, value):
        chunk = not key.rsplit("/", 1)[-1].startswith(".")  # not .zarray/.zattrs metadata
        if chunk and key.startswith("blocks_done/"):
            self.budget -= 1
        elif chunk and key.startswith("0/") and self.budget <= 0:
            raise OSError("disk full (simulated)")
        await super().set(key, value)


def count_steps(model, monkeypatch):
    calls = []
    step = model._net_step

    def counting(x, *args, **kw):
        calls.append(x.shape[0])
        return step(x, *args, **kw)

    monkeypatch.setattr(model, "_net_step", counting)
    return calls


def test_write_failure_keeps_blocks_and_resume_does_only_the_rest(model3d, volume, tmp_path, monkeypatch):
    full = model3d.predict_blockwise(volume, "ZYX", tmp_path / "ref.zarr", n_iter=2, block_size=(8, 32, 32))[...]
    with pytest.raises(OSError, match="resume=True"):
        model3d.predict_blockwise(volume, "ZYX", FailingStore(tmp_path / "out.zarr", 3), n_iter=2,
                                  block_size=(8, 32, 32))
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    done = np.argwhere(group["blocks_done"][...])
    assert len(done) == 3
    for idx in done:
        sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, (8, 32, 32)))
        np.testing.assert_array_equal(group["0"][sl], full[sl])
    calls = count_steps(model3d, monkeypatch)
    out = model3d.predict_blockwise(volume, "ZYX", str(tmp_path / "out.zarr"), n_iter=2, block_size=(8, 32, 32))
    assert len(calls) == (8 - 3) * 2  # the 5 missing blocks, 2 iterations each
    np.testing.assert_array_equal(out[...], full)
    calls.clear()
    model3d.predict_blockwise(volume, "ZYX", str(tmp_path / "out.zarr"), n_iter=2, block_size=(8, 32, 32))
    assert calls == []  # a finished run resumes to nothing


def test_existing_output_needs_resume_or_overwrite(model3d, volume, tmp_path):
    out = tmp_path / "out.zarr"
    model3d.predict_blockwise(volume, "ZYX", out)
    with pytest.raises(FileExistsError, match="resume=True"):
        model3d.predict_blockwise(volume, "ZYX", out, resume=False)
    (tmp_path / "notzarr").mkdir()
    (tmp_path / "notzarr" / "a.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a zarr folder"):
        model3d.predict_blockwise(volume, "ZYX", tmp_path / "notzarr", overwrite=True)
    assert (tmp_path / "notzarr" / "a.txt").read_text() == "keep me"


def test_resume_with_other_settings_names_both(model3d, volume, tmp_path):
    model3d.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", n_iter=1)
    with pytest.raises(ValueError, match=r"n_iter: output has 1, this run has 2"):
        model3d.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", n_iter=2)


def test_changed_source_is_detected(model3d, volume, tmp_path):
    tifffile.imwrite(tmp_path / "raw.tif", volume)
    model3d.predict_blockwise(str(tmp_path / "raw.tif"), "ZYX", tmp_path / "out.zarr")
    changed = volume.copy()
    changed[::4, ::4, ::4] += 1
    tifffile.imwrite(tmp_path / "raw.tif", changed)
    with pytest.raises(ValueError, match="source changed"):
        model3d.predict_blockwise(str(tmp_path / "raw.tif"), "ZYX", tmp_path / "out.zarr")


def test_axes_not_matching_source(model3d, volume, tmp_path):
    with pytest.raises(ValueError, match="do not match"):
        model3d.predict_blockwise(volume, "YX", tmp_path / "out.zarr")


def test_3d_model_needs_z(model3d, volume, tmp_path):
    with pytest.raises(ValueError, match="lack Z"):
        model3d.predict_blockwise(volume, "TYX", tmp_path / "out.zarr")


def test_block_size_rounded_up_to_network_multiple(model3d, volume, tmp_path, caplog):
    out = model3d.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", block_size=(5, 31, 33))
    assert out.chunks == (6, 32, 34)
    assert "not a multiple" in caplog.text


def test_block_size_of_wrong_length(model3d, volume, tmp_path):
    with pytest.raises(ValueError, match="block_size must be 3 integers"):
        model3d.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", block_size=(32, 32))


def test_nan_in_a_block_is_named(model3d, tmp_path):
    vol = np.ones((8, 32, 32), np.float32)
    vol[7, 31, 31] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf"):
        model3d.predict_blockwise(vol, "ZYX", tmp_path / "out.zarr", block_size=(4, 16, 16))


def test_nan_outside_the_normalization_sample_is_named_with_its_block(model3d, tmp_path, monkeypatch):
    from deepcontrast.models import _blockplan

    monkeypatch.setattr(_blockplan, "SAMPLE_VOXELS", 64)  # sample every 8th voxel along each axis
    vol = np.ones((8, 32, 32), np.float32)
    vol[7, 31, 31] = np.nan
    with pytest.raises(ValueError, match=r"block \(\d, \d, \d\) \(or its context \[.*\]\) .* NaN/Inf"):
        model3d.predict_blockwise(vol, "ZYX", tmp_path / "out.zarr", block_size=(4, 16, 16), n_iter=1)


def test_cli_zarr_output_selects_blockwise_and_resumes(model2d, volume, tmp_path, capsys):
    from deepcontrast.cli import main

    folder = DeepContrast(model2d.config, "m", basedir=str(tmp_path / "models"))
    folder.keras_model.set_weights(model2d.keras_model.get_weights())
    folder.keras_model.save_weights(str(tmp_path / "models" / "m" / "weights_best.h5"))
    tifffile.imwrite(tmp_path / "big.tif", volume)
    args = ["predict", str(tmp_path / "models" / "m"), str(tmp_path / "big.tif"), "-o", str(tmp_path / "out.ome.zarr"),
            "--axes", "ZYX", "--n-iter", "2", "--block-size", "8,32,32"]
    assert main(args) == 0
    out = zarr.open_group(tmp_path / "out.ome.zarr", mode="r")["0"][...]
    assert rel_dev(out, model2d.predict(volume, "ZYX", n_iter=2)) <= TILE_TOLERANCE
    assert main(args) == 1
    assert "resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0


def test_physical_3d_keeps_each_planes_light_with_z_cut_into_blocks(volume, tmp_path, caplog):
    model = seeded_model("ZYX", 1)
    out = model.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", n_iter=2, block_size=(8, 32, 32))
    assert "whole Y-X planes" in caplog.text  # Y and X widened to the volume, Z still cut
    ref = model.predict(volume, "ZYX", n_iter=2)
    assert rel_dev(out[...], ref) <= TILE_TOLERANCE
    light = lambda a: (np.asarray(a, np.float64) - 0.0).sum(axis=(1, 2))  # noqa: E731 (background 0)
    np.testing.assert_allclose(light(out[...]), light(volume), rtol=1e-3)


def test_3d_per_plane_normalization_with_z_cut_into_blocks(volume, tmp_path):
    # a 3D network trained on stacks normalized per plane (the default) normalizes each Z plane
    # on its own; blocks cut along Z take the percentiles of the planes they read (with context)
    model = seeded_model("ZYX", 3)
    assert model.config.normalize_per_slice
    dimmed = (volume * np.linspace(1, 0.2, len(volume))[:, None, None]).astype(np.float32)
    out = model.predict_blockwise(dimmed, "ZYX", tmp_path / "out.zarr", n_iter=2, block_size=(4, 64, 64))
    rec = zarr.open_group(tmp_path / "out.zarr", mode="r").attrs["deepcontrast"]
    assert rec["per_sample"] == "plane"
    np.testing.assert_allclose(np.asarray(rec["mi"]).ravel(), np.percentile(dimmed, 2, axis=(1, 2)), rtol=1e-5)
    ref = model.predict(dimmed, "ZYX", n_iter=2)
    assert rel_dev(out[...], ref) <= TILE_TOLERANCE
    whole = model.predict(dimmed, "ZYX", n_iter=2, normalizer=PercentileNormalizer())
    assert rel_dev(whole, ref) > 10 * rel_dev(out[...], ref)  # the per-plane normalization made a difference


def test_axes_in_any_order_written_in_ome_zarr_order(model2d, volume, tmp_path):
    out = model2d.predict_blockwise(np.moveaxis(volume, 0, -1), "YXZ", tmp_path / "out.zarr", block_size=(32, 32, 3))
    rec = zarr.open_group(tmp_path / "out.zarr", mode="r").attrs["deepcontrast"]
    assert rec["out_axes"] == "ZYX" and out.shape == volume.shape
    assert rel_dev(out[...], model2d.predict(volume, "ZYX")) <= TILE_TOLERANCE


def test_stopping_the_steps_between_blocks_leaves_a_resumable_output(model3d, volume, tmp_path, monkeypatch):
    from deepcontrast.models import _pyramid

    monkeypatch.setattr(_pyramid, "PLANE_SIZE", 16)  # levels 1 and 2 below the 64x64 planes
    model3d.predict_blockwise(volume, "ZYX", tmp_path / "ref.zarr", n_iter=2, block_size=(8, 32, 32))
    kw = dict(n_iter=2, block_size=(8, 32, 32), physical=False)
    steps = model3d.iter_predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", **kw)
    seen = [next(steps) for _ in range(4)]  # the start, then three blocks
    steps.close()
    assert [tuple(p) for p in seen] == [("blocks", i, 8) for i in range(4)]
    assert int(zarr.open_group(tmp_path / "out.zarr", mode="r")["blocks_done"][...].sum()) == 3
    calls = count_steps(model3d, monkeypatch)
    rest = list(model3d.iter_predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", **kw))
    assert len(calls) == (8 - 3) * 2  # only the 5 blocks not written, 2 iterations each
    assert [tuple(p) for p in rest if p.stage == "blocks"] == [("blocks", i, 8) for i in range(3, 9)]
    pyramid = [tuple(p) for p in rest if p.stage == "pyramid"]
    assert pyramid[-1][2] >= 2 and pyramid == [("pyramid", i, pyramid[-1][2]) for i in range(pyramid[-1][2] + 1)]
    got, want = (zarr.open_group(tmp_path / name, mode="r") for name in ("out.zarr", "ref.zarr"))
    for k in ("0", "1", "2"):  # every level as the uninterrupted run's
        np.testing.assert_array_equal(got[k][...], want[k][...])
