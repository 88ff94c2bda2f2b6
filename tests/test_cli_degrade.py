"""The ``deepcontrast degrade`` command and the CLI entry point."""
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from deepcontrast import DeepTissueDegradation, __version__
from deepcontrast.cli import main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out
    out = subprocess.run([sys.executable, "-m", "deepcontrast.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "degrade" in out.stdout


def test_degrade_writes_float32_equal_to_api(tmp_path):
    img = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, img)
    args = [str(src), str(dst), "--axes", "ZYX", "--extra-depth", "30", "--voxel-size", "2,0.5,0.5"]
    assert main(["degrade", *args]) == 0
    out = tifffile.imread(dst)
    assert out.dtype == np.float32
    expected = DeepTissueDegradation()(img, "ZYX", 30, voxel_size=(2, 0.5, 0.5))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # refuses to overwrite, and never writes over its input
    assert main(["degrade", *args]) == 1
    assert main(["degrade", str(src), str(src), "--axes", "ZYX", "--extra-depth", "1", "--overwrite"]) == 1
    np.testing.assert_array_equal(tifffile.imread(src), img)
    assert main(["degrade", *args, "--overwrite", "--photons", "20", "--seed", "1"]) == 0
    assert not np.allclose(tifffile.imread(dst), expected)


def test_degrade_bad_input(tmp_path, capsys):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.zeros((8, 8), np.float32))
    assert main(["degrade", str(src), str(tmp_path / "o.tif"), "--axes", "ZYX", "--extra-depth", "5"]) == 1
    assert "do not match" in capsys.readouterr().err
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    assert main(["degrade", str(bad), str(tmp_path / "o.tif"), "--axes", "YX", "--extra-depth", "5"]) == 1
    assert "bad.tif" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_error_is_one_line_and_verbose_shows_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    args = ["degrade", str(bad), str(tmp_path / "o.tif"), "--axes", "YX", "--extra-depth", "5"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "bad.tif" in err and "Traceback" not in err
    for flag in ("-v", "--debug"):
        assert main([flag, *args]) == 1
        err = capsys.readouterr().err
        assert "bad.tif" in err and "Traceback" in err


def test_ctrl_c_ends_with_message_and_status_130(tmp_path, capsys, monkeypatch):
    import deepcontrast.cli.degrade as degrade

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(degrade, "run", interrupted)
    assert main(["degrade", "a.tif", "b.tif", "--axes", "YX", "--extra-depth", "5"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def _imagej_stack(path, shape=(4, 32, 32)):
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    tifffile.imwrite(path, img, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX"[-len(shape):], "spacing": 3.0, "unit": "um"})
    return img


def _scale(path):
    with tifffile.TiffFile(path) as tif:
        meta = tif.imagej_metadata or {}
        return tif.pages[0].tags["XResolution"].value, meta.get("spacing"), meta.get("unit")


def test_degrade_carries_voxel_size_and_unit(tmp_path):
    src = tmp_path / "in.tif"
    _imagej_stack(src)
    assert main(["degrade", str(src), str(tmp_path / "a.tif"), "--axes", "ZYX", "--extra-depth", "5"]) == 0
    assert _scale(tmp_path / "a.tif") == ((2, 1), 3.0, "um")
    assert main(["degrade", str(src), str(tmp_path / "b.tif"), "--axes", "ZYX", "--extra-depth", "5",
                 "--voxel-size", "2,0.25,0.25"]) == 0
    assert _scale(tmp_path / "b.tif") == ((4, 1), 2.0, "um")


def test_degrade_single_plane_stack_reads_back_as_zyx(tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.ones((1, 48, 48), np.float32), metadata={"axes": "ZYX"})
    assert main(["degrade", str(src), str(tmp_path / "o.tif"), "--axes", "ZYX", "--extra-depth", "5"]) == 0
    assert tifffile.imread(tmp_path / "o.tif").shape == (1, 48, 48)


def test_truncated_tiff_is_a_read_error_naming_the_file(tmp_path, capsys):
    src = tmp_path / "full.tif"
    _imagej_stack(src, (5, 64, 64))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    assert main(["degrade", str(cut), str(tmp_path / "o.tif"), "--axes", "ZYX", "--extra-depth", "5"]) == 1
    err = capsys.readouterr().err
    assert "cut.tif" in err and "truncated" in err
    assert not (tmp_path / "o.tif").exists()


def test_outputs_respect_the_umask(tmp_path):
    import os

    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.ones((16, 16), np.float32))
    old = os.umask(0o022)
    try:
        assert main(["degrade", str(src), str(tmp_path / "o.tif"), "--axes", "YX", "--extra-depth", "5"]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "o.tif").stat().st_mode & 0o777 == 0o644


def test_degrade_surface_auto_uses_the_depth_below_the_found_surface(tmp_path):
    from deepcontrast.data import synthetic_spheroid
    from deepcontrast.depth import surface_depth

    img = synthetic_spheroid((8, 48, 48), rng=0)[0]
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, img)
    assert main(["degrade", str(src), str(dst), "--axes", "ZYX", "--extra-depth", "20", "--voxel-size", "2,0.5,0.5",
                 "--surface", "auto"]) == 0
    dmap = surface_depth(img, "ZYX", voxel_size=(2, 0.5, 0.5))
    expected = DeepTissueDegradation()(img, "ZYX", 20, depth=dmap, voxel_size=(2, 0.5, 0.5))
    np.testing.assert_allclose(tifffile.imread(dst), expected, rtol=1e-6)
    assert not np.allclose(expected, DeepTissueDegradation()(img, "ZYX", 20, voxel_size=(2, 0.5, 0.5)))


def test_degrade_surface_auto_with_a_depth(tmp_path, capsys):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.random.default_rng(0).random((4, 16, 16)).astype(np.float32))
    assert main(["degrade", str(src), str(tmp_path / "o.tif"), "--axes", "ZYX", "--extra-depth", "5",
                 "--surface", "auto", "--depth", "10"]) == 1
    assert "leave depth at 0" in capsys.readouterr().err
