"""CLI round trip: deepcontrast train -> deepcontrast predict on a tiny model."""
import json

import numpy as np
import pytest
import tifffile

from deepcontrast.cli import main

TINY = {"unet_n_depth": 1, "unet_n_first": 4, "train_batch_size": 4, "train_tensorboard": False}
SETTINGS = {"degradation": {"attenuation_length": 150.0}, "extra_depth": [10, 40]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from csbdeep.io import save_training_data

    tmp = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    Y = rng.random((20, 1, 16, 16), dtype=np.float32)
    save_training_data(tmp / "data.npz", 0.5 * Y, Y, "SCYX")
    (tmp / "data.settings.json").write_text(json.dumps(SETTINGS))
    (tmp / "config.json").write_text(json.dumps(TINY))
    status = main(["train", str(tmp / "data.npz"), "--name", "m", "--basedir", str(tmp / "models"),
                   "--epochs", "1", "--steps", "2", "--config-json", str(tmp / "config.json")])
    assert status == 0
    return tmp


def test_train_writes_model_folder_with_settings(trained):
    folder = trained / "models" / "m"
    assert (folder / "weights_last.h5").exists() and (folder / "weights_best.h5").exists()
    side = json.loads((folder / "deepcontrast.json").read_text())
    assert side["degradation_settings"] == SETTINGS
    assert json.loads((folder / "config.json").read_text())["unet_n_first"] == 4


def test_trained_folder_loads_in_csbdeep_care(trained):
    from csbdeep.models import CARE, Config

    folder = trained / "models" / "m"
    assert set(json.loads((folder / "config.json").read_text())) == set(vars(Config("YX")))
    care = CARE(None, "m", basedir=str(trained / "models"))
    assert care.config.unet_n_first == 4


def test_train_refuses_existing_model(trained, capsys):
    status = main(["train", str(trained / "data.npz"), "--name", "m", "--basedir", str(trained / "models")])
    assert status == 1 and "--continue" in capsys.readouterr().err


def test_train_rejects_unknown_config_key(trained, tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"no_such_key": 1}))
    status = main(["train", str(trained / "data.npz"), "--name", "x", "--basedir", str(tmp_path),
                   "--config-json", str(tmp_path / "c.json")])
    assert status == 1 and "no_such_key" in capsys.readouterr().err


def test_predict_batch_skips_bad_file_and_reports(trained, tmp_path, capsys):
    rng = np.random.default_rng(1)
    good = [tmp_path / "a.tif", tmp_path / "b.tif"]
    for g in good:
        tifffile.imwrite(g, (rng.random((20, 24)) * 100).astype(np.float32))
    bad = tmp_path / "bad.tif"
    bad.write_text("not a tiff")
    out = tmp_path / "out"
    args = ["predict", str(trained / "models" / "m"), str(good[0]), str(bad), str(good[1]),
            "-o", str(out), "--axes", "YX", "--n-iter", "2", "--save-all-iterations", "--n-tiles", "2,2"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "bad.tif" in err and "1 of 3" in err
    for stem in "ab":
        it1, it2 = (tifffile.imread(out / f"{stem}_iter{k}.tif") for k in (1, 2))
        assert it1.shape == (20, 24) and it1.dtype == np.float32 and not np.array_equal(it1, it2)
    assert not any(out.glob("bad*"))
    # existing outputs are refused without --overwrite, replaced with it
    assert main(args[:3] + args[4:]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(args[:3] + args[4:] + ["--overwrite"]) == 0


def test_predict_matches_python_api(trained, tmp_path):
    from deepcontrast.models import DeepContrast

    img = (np.random.default_rng(2).random((16, 20)) * 50).astype(np.float32)
    tifffile.imwrite(tmp_path / "c.tif", img)
    assert main(["predict", str(trained / "models" / "m"), str(tmp_path / "c.tif"), "-o", str(tmp_path),
                 "--n-iter", "3"]) == 0
    model = DeepContrast(None, "m", basedir=trained / "models")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c_iter3.tif"), model.predict(img, "YX", n_iter=3))


def test_predict_background_and_no_physical_match_python_api(trained, tmp_path):
    from deepcontrast.models import DeepContrast

    img = (np.random.default_rng(3).random((16, 20)) * 50 + 100).astype(np.float32)
    tifffile.imwrite(tmp_path / "d.tif", img)
    model = DeepContrast(None, "m", basedir=trained / "models")
    m = str(trained / "models" / "m")
    assert main(["predict", m, str(tmp_path / "d.tif"), "-o", str(tmp_path / "a"), "--n-iter", "2",
                 "--background", "100"]) == 0
    out = tifffile.imread(tmp_path / "a" / "d_iter2.tif")
    np.testing.assert_array_equal(out, model.predict(img, "YX", n_iter=2, background=100.0))
    assert out.min() >= 100 - 1e-3
    assert main(["predict", m, str(tmp_path / "d.tif"), "-o", str(tmp_path / "b"), "--n-iter", "2",
                 "--no-physical"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "b" / "d_iter2.tif"),
                                  model.predict(img, "YX", n_iter=2, physical=False))


def test_predict_precision_matches_python_api(trained, tmp_path):
    from deepcontrast.models import DeepContrast

    img = (np.random.default_rng(4).random((16, 20)) * 50).astype(np.float32)
    tifffile.imwrite(tmp_path / "e.tif", img)
    model = DeepContrast(None, "m", basedir=trained / "models")
    for precision in ("float32", "bfloat16"):
        assert main(["predict", str(trained / "models" / "m"), str(tmp_path / "e.tif"), "-o", str(tmp_path / precision),
                     "--precision", precision]) == 0
        np.testing.assert_array_equal(tifffile.imread(tmp_path / precision / "e_iter1.tif"),
                                      model.predict(img, "YX", precision=precision))


def test_predict_bad_n_tiles_fails(trained, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "d.tif", np.ones((16, 16), np.float32))
    assert main(["predict", str(trained / "models" / "m"), str(tmp_path / "d.tif"), "-o", str(tmp_path),
                 "--n-tiles", "2,2,2"]) == 1
    assert "--n-tiles" in capsys.readouterr().err


def test_predict_missing_model(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "d.tif", np.ones((16, 16), np.float32))
    assert main(["predict", str(tmp_path / "nope"), str(tmp_path / "d.tif"), "-o", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err


def _tiny_data(folder, Y=None):
    from csbdeep.io import save_training_data

    if Y is None:
        Y = np.random.default_rng(0).random((20, 1, 16, 16), dtype=np.float32)
    save_training_data(folder / "data.npz", 0.5 * Y, Y, "SCYX")
    (folder / "config.json").write_text(json.dumps(TINY))
    return ["train", str(folder / "data.npz"), "--basedir", str(folder / "models"), "--steps", "2",
            "--config-json", str(folder / "config.json")]


def test_train_overwrite_starts_a_new_history(tmp_path):
    args = _tiny_data(tmp_path)
    assert main(args + ["--name", "m", "--epochs", "2"]) == 0
    assert main(args + ["--name", "m", "--epochs", "1", "--overwrite"]) == 0
    side = json.loads((tmp_path / "models" / "m" / "deepcontrast.json").read_text())
    assert len(side["history"]) == 1
    from deepcontrast.models.precision import resolve_precision

    assert side["trainings"] == [{"interrupted": False, "epochs": 1, "precision": resolve_precision("auto", 2)}]


def test_predict_carries_voxel_size_and_unit(trained, tmp_path):
    img = (np.random.default_rng(3).random((16, 20)) * 50).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", img, imagej=True, resolution=(4.0, 4.0),
                     metadata={"axes": "YX", "unit": "um"})
    assert main(["predict", str(trained / "models" / "m"), str(tmp_path / "s.tif"), "-o", str(tmp_path / "o")]) == 0
    with tifffile.TiffFile(tmp_path / "o" / "s_iter1.tif") as tif:
        assert tif.pages[0].tags["XResolution"].value == (4, 1)
        assert tif.imagej_metadata["unit"] == "um"


def test_predict_truncated_tiff_names_the_file(trained, tmp_path, capsys):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, np.ones((5, 64, 64), np.float32), imagej=True, metadata={"axes": "ZYX"})
    (tmp_path / "cut.tif").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert main(["predict", str(trained / "models" / "m"), str(tmp_path / "cut.tif"), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "cut.tif" in err and "truncated" in err and "pass --axes" not in err


def test_train_refuses_nan_data(tmp_path, capsys):
    Y = np.random.default_rng(0).random((20, 1, 16, 16), dtype=np.float32)
    Y[3, 0, 2, 2] = np.nan
    args = _tiny_data(tmp_path, Y)
    assert main(args + ["--name", "m", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "NaN" in err and "training data" in err
    assert not any((tmp_path / "models").glob("m/*.h5"))


@pytest.mark.parametrize("command", ["predict", "export"])
def test_corrupt_model_config_is_named(trained, tmp_path, capsys, command):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(trained / "models" / "m", folder)
    (folder / "config.json").write_text("garbage")
    tifffile.imwrite(tmp_path / "d.tif", np.ones((16, 16), np.float32))
    args = ["predict", str(folder), str(tmp_path / "d.tif"), "-o", str(tmp_path / "o")]
    assert main(args if command == "predict" else ["export", str(folder)]) == 1
    assert "config.json is not valid JSON" in capsys.readouterr().err
