"""Tests of ``deepcontrast datagen``."""
import numpy as np
import pytest
import tifffile
from csbdeep.io import load_training_data

from deepcontrast.cli import main
from deepcontrast.data import load_settings, synthetic_tissue


@pytest.fixture
def raw_dir(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(2):
        tifffile.imwrite(raw / f"s{i}.tif", synthetic_tissue((8, 48, 48), rng=i)[0])
    return raw


def args(raw_dir, out, *extra):
    return [
        "datagen", str(raw_dir), "--axes", "ZYX", "--patch-size", "4,32,32", "--n-patches", "3",
        "--extra-depth", "10:40", "--n-degradations", "2", "--voxel-size", "2,0.5,0.5", "--photons", "50",
        "--seed", "0", "-o", str(out), *extra,
    ]


def test_datagen_writes_npz_and_settings(raw_dir, tmp_path, capsys):
    out = tmp_path / "data" / "train.npz"
    assert main(args(raw_dir, out)) == 0
    (X, Y), _, axes = load_training_data(out)
    assert X.shape == (12, 4, 32, 32, 1) and axes == "SZYXC"
    s = load_settings(out)
    assert s["extra_depth"] == [10.0, 40.0] and s["n_degradations"] == 2 and s["degradation"]["photons"] == 50
    assert "wrote" in capsys.readouterr().out


def test_datagen_normalizes_planes_unless_told_to_normalize_stacks(raw_dir, tmp_path):
    from deepcontrast.models import Config

    for extra, planes in (((), True), (("--normalize-stacks",), False)):
        out = tmp_path / f"{planes}.npz"
        assert main(args(raw_dir, out, *extra)) == 0
        assert load_settings(out)["normalize_planes"] is planes
        assert Config.from_training_data(out).normalize_per_slice is planes  # the model predicts as it trained


def test_datagen_same_seed_same_data(raw_dir, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(args(raw_dir, a)) == 0
    assert main(args(raw_dir, b)) == 0
    with np.load(a) as fa, np.load(b) as fb:
        np.testing.assert_array_equal(fa["X"], fb["X"])


def test_datagen_refuses_existing_output(raw_dir, tmp_path, capsys):
    out = tmp_path / "train.npz"
    out.write_bytes(b"precious")
    assert main(args(raw_dir, out)) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(args(raw_dir, out, "--overwrite")) == 0
    assert load_settings(out) is not None


def test_datagen_patch_too_large_writes_nothing(raw_dir, tmp_path, capsys):
    out = tmp_path / "train.npz"
    argv = args(raw_dir, out)
    argv[argv.index("4,32,32")] = "16,32,32"
    assert main(argv) == 1
    assert "larger than" in capsys.readouterr().err
    assert list(tmp_path.glob("train*")) == []


def test_datagen_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(args(tmp_path / "empty", tmp_path / "x.npz")) == 1
    assert "no files matching" in capsys.readouterr().err


def test_datagen_needs_input(tmp_path, capsys):
    assert main(["datagen", "--patch-size", "4,32,32", "--n-patches", "2", "-o", str(tmp_path / "x.npz")]) == 1
    assert "RAW_DIR" in capsys.readouterr().err


def test_datagen_sample(tmp_path):
    out = tmp_path / "s.npz"
    assert main(["datagen", "--sample", "--patch-size", "8,32,32", "--n-patches", "2", "--photons", "50",
                 "--seed", "1", "-o", str(out)]) == 0
    assert load_settings(out)["voxel_size"] == [2.0, 0.5, 0.5]


@pytest.mark.parametrize("voxel_size, noted", [("2,2", True), ("0.5,0.5", False)])
def test_datagen_says_when_the_blur_increment_is_sub_pixel(tmp_path, capsys, voxel_size, noted):
    raw = tmp_path / "raw2d"
    raw.mkdir()
    tifffile.imwrite(raw / "p.tif", synthetic_tissue((64, 64), rng=0)[0])
    out = tmp_path / "train.npz"
    argv = ["datagen", str(raw), "--axes", "YX", "--patch-size", "32,32", "--n-patches", "2", "--voxel-size",
            voxel_size, "--photons", "50", "--seed", "0", "-o", str(out)]
    assert main(argv) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "blur increment" in ln]
    # 0.03 um/um x sqrt(25^2) = 0.75 um: 0.375 px at 2 um pixels, 1.5 px at 0.5 um
    assert len(lines) == (1 if noted else 0)
    if noted:
        assert "0.38 px" in lines[0] and "blur_rate=" in lines[0]


def test_datagen_microscope_goes_to_the_calibration(raw_dir, tmp_path, capsys):
    out = tmp_path / "wide.npz"
    argv = [a for a in args(raw_dir, out) if a not in ("--photons", "50")] + ["--calibrate", "--microscope", "widefield"]
    assert main(argv) == 0
    assert load_settings(out)["calibration"]["mode"] == "widefield"
    # without --calibrate the option has nothing to act on: refused, nothing written
    lone = tmp_path / "lone.npz"
    assert main(args(raw_dir, lone, "--microscope", "widefield")) != 0
    assert "add --calibrate" in capsys.readouterr().err and not lone.exists()


def test_datagen_surface_auto_records_the_depth_maps(tmp_path):
    from deepcontrast.data import synthetic_spheroid

    raw = tmp_path / "raw"
    raw.mkdir()
    tifffile.imwrite(raw / "s.tif", synthetic_spheroid((8, 48, 48), rng=0)[0])
    out = tmp_path / "auto.npz"
    assert main(args(raw, out, "--surface", "auto")) == 0
    s = load_settings(out)
    assert s["surface"] == "auto"
    assert s["depth_map"] == {"source": "surface_depth(surface='first') of each image", "surface": "first"}
    flat = tmp_path / "flat.npz"
    assert main(args(raw, flat)) == 0
    assert load_settings(flat)["depth_map"] is None
    (Xa, _), _, _ = load_training_data(out)
    (Xf, _), _, _ = load_training_data(flat)
    assert Xa.shape == Xf.shape and not np.array_equal(Xa, Xf)


def test_datagen_surface_auto_with_subvolumes(raw_dir, tmp_path, capsys):
    assert main(args(raw_dir, tmp_path / "x.npz", "--surface", "auto", "--subvolume-size", "4,32,32")) == 1
    assert "sub-volumes" in capsys.readouterr().err
