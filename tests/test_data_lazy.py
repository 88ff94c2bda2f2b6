"""Training data from lazily read volumes: same pairs as from memory, sub-volumes at their true depth."""
import re

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
import tifffile  # noqa: E402

from deepcontrast import DeepTissueDegradation  # noqa: E402
from deepcontrast.data import DegradedRawData, create_patches, synthetic_tissue  # noqa: E402


@pytest.fixture(scope="module")
def stack():
    return synthetic_tissue((24, 48, 48), voxel_size=(2, 0.5, 0.5), rng=3)[0]


def as_zarr(arr, path):
    z = zarr.open_array(str(path), mode="w", shape=arr.shape, chunks=(8, 16, 16), dtype=arr.dtype)
    z[...] = arr
    return z


@pytest.mark.parametrize("sub", [None, (8, 32, 32)])
def test_zarr_volume_gives_the_same_training_data_as_the_array(stack, tmp_path, sub):
    deg = DeepTissueDegradation(photons=50)
    kw = dict(n_degradations=2, voxel_size=(2, 0.5, 0.5), rng=7, subvolume_size=sub, n_subvolumes=3)
    a = DegradedRawData.from_arrays(stack, "ZYX", deg, (10, 40), **kw)
    z = DegradedRawData.from_arrays(as_zarr(stack, tmp_path / "v.zarr"), "ZYX", deg, (10, 40), **kw)
    Xa, Ya, _ = create_patches(a, (8, 16, 16), 4, rng=1, verbose=False)
    Xz, Yz, _ = create_patches(z, (8, 16, 16), 4, rng=1, verbose=False)
    np.testing.assert_array_equal(Xa, Xz)
    np.testing.assert_array_equal(Ya, Yz)


def test_tiff_and_zarr_folders_read_lazily_by_from_folder(stack, tmp_path):
    (tmp_path / "raw").mkdir()
    tifffile.imwrite(tmp_path / "raw" / "a.tif", stack)
    as_zarr(stack, tmp_path / "raw" / "b.zarr")
    deg = DeepTissueDegradation(photons=50)
    kw = dict(voxel_size=(2, 0.5, 0.5), rng=2, subvolume_size=(8, 32, 32), n_subvolumes=2)
    data = DegradedRawData.from_folder(tmp_path, ["raw"], "ZYX", deg, 20, normalize_planes=False, pattern="*", **kw)
    pairs = list(data.generator())
    assert len(pairs) == data.size == 4 and all(x.shape == (8, 32, 32) for x, *_ in pairs)
    for name, (_, y, _, _) in zip(data.names, pairs):
        region = tuple(slice(int(a), int(b)) for a, b in re.findall(r"(\d+):(\d+)", name.rsplit("[", 1)[-1]))
        np.testing.assert_array_equal(y, stack[region])  # the target is the raw sub-volume it names


def test_subvolume_is_degraded_at_its_true_depth(stack):
    """Without noise, the middle planes of a deep sub-volume match the degraded whole stack there."""
    deg = DeepTissueDegradation(photons=None, read_noise=0)
    whole = deg(stack, "ZYX", 30, voxel_size=(2, 0.5, 0.5))
    data = DegradedRawData.from_arrays(stack, "ZYX", deg, 30, normalize_planes=False, voxel_size=(2, 0.5, 0.5), rng=5,
                                       subvolume_size=(12, 48, 48), n_subvolumes=4)
    checked = 0
    for name, (x, _, _, _) in zip(data.names, data.generator()):
        z0 = int(name.rsplit("[", 1)[-1].split(":")[0])
        if z0 < 6:
            continue
        mid = slice(4, 8)
        at_depth = np.abs(x[mid] - whole[z0 + 4:z0 + 8]).max()
        at_surface = np.abs(deg(stack[z0:z0 + 12], "ZYX", 30, voxel_size=(2, 0.5, 0.5))[mid] - whole[z0 + 4:z0 + 8]).max()
        assert at_depth < 0.1 * at_surface
        checked += 1
    assert checked > 0


def test_subvolume_larger_than_volume(stack):
    with pytest.raises(ValueError, match="larger than"):
        DegradedRawData.from_arrays(stack, "ZYX", DeepTissueDegradation(), 20, subvolume_size=(32, 16, 16))


def test_cli_datagen_from_a_zarr_volume_with_subvolumes(stack, tmp_path):
    from csbdeep.io import load_training_data

    from deepcontrast.cli import main
    from deepcontrast.data import load_settings

    as_zarr(stack, tmp_path / "big.zarr")
    out = tmp_path / "train.npz"
    assert main(["datagen", str(tmp_path / "big.zarr"), "--axes", "ZYX", "--patch-size", "4,16,16", "--n-patches", "2",
                 "--photons", "50", "--subvolume-size", "8,32,32", "--n-subvolumes", "3", "--seed", "0",
                 "-o", str(out)]) == 0
    (X, _), _, axes = load_training_data(out)
    assert X.shape == (6, 4, 16, 16, 1)
    assert load_settings(out)["subvolume_size"] == [8, 32, 32]
