"""Multiscale pyramid of blockwise prediction: mean-downsamples of level 0, NGFF metadata, resumable."""
import functools

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")
import zarr  # noqa: E402

from deepcontrast.data import synthetic_tissue  # noqa: E402
from deepcontrast.models import _pyramid  # noqa: E402
from test_blockwise import count_steps, seeded_model  # noqa: E402  (tests/ is on sys.path)

BLOCK = (8, 32, 32)


@pytest.fixture(scope="module")
def model():
    m = seeded_model("ZYX", 1)
    m.predict_blockwise = functools.partial(m.predict_blockwise, physical=False, block_size=BLOCK)
    return m


@pytest.fixture(scope="module")
def volume():
    return (synthetic_tissue((16, 64, 64), rng=0)[0] * 1000).astype(np.uint16)


@pytest.fixture(autouse=True)
def small_planes(monkeypatch):
    monkeypatch.setattr(_pyramid, "PLANE_SIZE", 16)  # 64 -> 32 -> 16: two levels below level 0


def mean_downsample(a, factors):
    """The ``factors`` mean-downsample of ``a`` (float64; pixels beyond the last whole window dropped)."""
    a = np.asarray(a, np.float64)[tuple(slice(0, n // f * f) for n, f in zip(a.shape, factors))]
    shape = [v for n, f in zip(a.shape, factors) for v in (n // f, f)]
    return a.reshape(shape).mean(axis=tuple(range(1, 2 * a.ndim, 2)))


def levels(path, image=""):
    group = zarr.open_group(path, mode="r")
    group = group[image] if image else group
    paths = [d["path"] for d in group.attrs["multiscales"][0]["datasets"]]
    return [group[p][...] for p in paths]


def test_plan_downsamples_z_only_where_the_voxel_is_nearly_isotropic():
    assert _pyramid.plan_levels((16, 64, 64), "ZYX", {}) == [[1, 1, 1], [2, 2, 2], [4, 4, 4]]
    assert _pyramid.plan_levels((16, 64, 64), "ZYX", {"Z": 2.0, "Y": 1.0, "X": 1.0}) == \
        [[1, 1, 1], [1, 2, 2], [2, 4, 4]]
    assert _pyramid.plan_levels((2, 3, 64, 50), "TCYX", {}) == [[1, 1, 1, 1], [1, 1, 2, 2], [1, 1, 4, 4]]
    assert _pyramid.plan_levels((16, 16, 16), "ZYX", {}) == [[1, 1, 1]]  # already small: level 0 only


@pytest.mark.parametrize("voxel_size", [None, (2.0, 0.5, 0.5)])
def test_level_k_is_the_mean_downsample_of_level_0(model, volume, tmp_path, voxel_size):
    model.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", voxel_size=voxel_size)
    lv = levels(tmp_path / "out.zarr")
    factors = zarr.open_group(tmp_path / "out.zarr", mode="r").attrs["deepcontrast"]["pyramid"]["factors"]
    assert len(lv) == 3 and lv[-1].shape[1:] == (16, 16)
    rng = float(lv[0].max() - lv[0].min())
    for k in (1, 2):
        ref = mean_downsample(lv[0], factors[k])
        assert lv[k].shape == ref.shape and lv[k].dtype == np.float32
        assert np.abs(lv[k] - ref).max() <= 1e-5 * rng


def test_ome_zarr_reader_lists_every_level_with_its_scale(model, volume, tmp_path):
    from ome_zarr.format import FormatV04
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    model.predict_blockwise(volume, "ZYX", tmp_path / "out.ome.zarr", voxel_size=(2, 0.5, 0.5))
    node = list(Reader(parse_url(str(tmp_path / "out.ome.zarr"), fmt=FormatV04()))())[0]
    assert zarr.open_group(tmp_path / "out.ome.zarr", mode="r").attrs["multiscales"][0]["version"] == "0.4"
    # Z (2 um) stays until the in-plane voxel has grown to it: 2x0.5x0.5, 2x1x1, then 2x2x2 (isotropic)
    assert [d.shape for d in node.data] == [(16, 64, 64), (16, 32, 32), (16, 16, 16)]
    transforms = node.metadata["coordinateTransformations"]
    assert [t[0]["scale"] for t in transforms] == [[2, 0.5, 0.5], [2, 1, 1], [2, 2, 2]]
    assert transforms[2][1]["translation"] == [0, 0.75, 0.75]  # centre of a 1x4x4 window


def test_killed_pyramid_resumes_to_identical_levels(model, volume, tmp_path, monkeypatch):
    small = dict(n_iter=2, block_size=(4, 16, 16))  # 8 chunks in level 1
    model.predict_blockwise(volume, "ZYX", tmp_path / "ref.zarr", **small)
    ref = levels(tmp_path / "ref.zarr")
    writes = []
    compute = _pyramid.compute_chunk

    def killed_after_3(*args):
        if len(writes) == 3:
            raise OSError("killed (simulated)")
        writes.append(args[-1])
        return compute(*args)

    monkeypatch.setattr(_pyramid, "compute_chunk", killed_after_3)
    with pytest.raises(OSError, match="killed"):
        model.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", **small)
    monkeypatch.setattr(_pyramid, "compute_chunk", compute)
    done = zarr.open_group(tmp_path / "out.zarr", mode="r")["levels_done/last/1"][...]
    assert done.sum() == 3 and done.size > 3
    calls = count_steps(model, monkeypatch)
    model.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", **small)
    assert calls == []  # level 0 was complete: only the pyramid was finished
    for a, b in zip(levels(tmp_path / "out.zarr"), ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_failed_level_write_names_resume(model, volume, tmp_path):
    class FailingLevels(zarr.storage.LocalStore):
        async def set(self, key, value):
            if key.startswith("2/") and not key.rsplit("/", 1)[-1].startswith("."):
                raise OSError("disk full (simulated)")
            await super().set(key, value)

    with pytest.raises(OSError, match=r"level 2 chunk .* resume=True"):
        model.predict_blockwise(volume, "ZYX", FailingLevels(tmp_path / "out.zarr"))
    out = model.predict_blockwise(volume, "ZYX", str(tmp_path / "out.zarr"))
    assert np.isfinite(levels(tmp_path / "out.zarr")[2]).all() and out.shape == volume.shape


def test_save_all_iterations_gets_pyramids(model, volume, tmp_path):
    model.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", n_iter=2, save_all_iterations=True)
    lv = levels(tmp_path / "out.zarr", "iter1")
    assert [a.shape for a in lv] == [(16, 64, 64), (8, 32, 32), (4, 16, 16)]
    assert np.abs(lv[2] - mean_downsample(lv[0], (4, 4, 4))).max() <= 1e-5 * float(np.ptp(lv[0]))


def test_no_pyramid_writes_level_0_only_and_is_resumed_only_so(model, volume, tmp_path):
    out = model.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr", pyramid=False)
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    assert sorted(group.keys()) == ["0", "blocks_done"]
    assert [d["path"] for d in group.attrs["multiscales"][0]["datasets"]] == ["0"]
    ref = model.predict_blockwise(volume, "ZYX", tmp_path / "ref.zarr")
    np.testing.assert_array_equal(out[...], ref[...])
    with pytest.raises(ValueError, match=r"pyramid: output has null.*pyramid=False"):
        model.predict_blockwise(volume, "ZYX", tmp_path / "out.zarr")


def test_output_inside_the_input_is_refused(model, volume, tmp_path):
    raw = zarr.open_array(tmp_path / "raw.zarr", mode="w", shape=volume.shape, chunks=(8, 32, 32),
                          dtype=volume.dtype)
    raw[...] = volume
    with pytest.raises(ValueError, match="inside the input"):
        model.predict_blockwise(str(tmp_path / "raw.zarr"), "ZYX", tmp_path / "raw.zarr" / "out.zarr")
    with pytest.raises(ValueError, match="inside the input"):  # a zarr array object knows its folder too
        model.predict_blockwise(raw, "ZYX", tmp_path / "raw.zarr" / "out.zarr")
    assert not (tmp_path / "raw.zarr" / "out.zarr").exists()


def test_output_containing_the_input_is_refused(model, volume, tmp_path):
    (tmp_path / "out.zarr").mkdir()
    raw = zarr.open_array(tmp_path / "out.zarr" / "raw", mode="w", shape=volume.shape, dtype=volume.dtype)
    raw[...] = volume
    with pytest.raises(ValueError, match="inside the output"):
        model.predict_blockwise(raw, "ZYX", tmp_path / "out.zarr", overwrite=True)
    np.testing.assert_array_equal(raw[...], volume)


def test_cli_writes_the_pyramid_and_no_pyramid_switches_it_off(volume, tmp_path):
    import tifffile

    from deepcontrast.cli import main
    from deepcontrast.models import DeepContrast

    m = seeded_model("YX", 2)
    folder = DeepContrast(m.config, "m", basedir=str(tmp_path / "models"))
    folder.keras_model.set_weights(m.keras_model.get_weights())
    folder.keras_model.save_weights(str(tmp_path / "models" / "m" / "weights_best.h5"))
    tifffile.imwrite(tmp_path / "big.tif", volume)
    args = ["predict", str(tmp_path / "models" / "m"), str(tmp_path / "big.tif"), "--axes", "ZYX",
            "--block-size", "8,32,32", "-o"]
    assert main(args + [str(tmp_path / "a.ome.zarr")]) == 0
    assert [a.shape for a in levels(tmp_path / "a.ome.zarr")] == [(16, 64, 64), (8, 32, 32), (4, 16, 16)]
    assert main(args + [str(tmp_path / "b.ome.zarr"), "--no-pyramid"]) == 0
    assert [a.shape for a in levels(tmp_path / "b.ome.zarr")] == [(16, 64, 64)]


def test_pyramid_on_a_dask_client_matches_the_one_made_here(model, volume, tmp_path):
    distributed = pytest.importorskip("distributed")
    small = dict(block_size=(4, 16, 16))  # 8 chunks in level 1, run concurrently
    model.predict_blockwise(volume, "ZYX", tmp_path / "here.zarr", **small)
    here = levels(tmp_path / "here.zarr")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        model.predict_blockwise(volume, "ZYX", tmp_path / "cluster.zarr", client=client, **small)
    rng = float(np.ptp(here[0]))
    for a, b in zip(levels(tmp_path / "cluster.zarr"), here, strict=True):  # a worker's model: float32 rounding
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5 * rng
