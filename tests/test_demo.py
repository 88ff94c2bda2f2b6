"""The demo: output-folder safety, 2D-on-slices helpers, and the end-to-end quick run."""
import json

import numpy as np
import pytest

from deepcontrast.cli import main
from deepcontrast.demo import MARKER, demo_settings, prepare_out_dir


# -- output folder ----------------------------------------------------------------------------
def test_prepare_out_dir_creates_folder_with_marker(tmp_path):
    out = prepare_out_dir(tmp_path / "new" / "demo")
    assert out.is_dir() and (out / MARKER).exists()


def test_prepare_out_dir_accepts_its_own_folder_again(tmp_path):
    out = prepare_out_dir(tmp_path / "demo")
    (out / "metrics.json").write_text("{}")
    assert prepare_out_dir(out) == out


def test_prepare_out_dir_accepts_empty_foreign_folder(tmp_path):
    assert prepare_out_dir(tmp_path).is_dir()


def test_prepare_out_dir_refuses_foreign_nonempty_folder(tmp_path):
    (tmp_path / "precious.tif").write_bytes(b"data")
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_out_dir(tmp_path)


def test_prepare_out_dir_overwrite_keeps_foreign_files(tmp_path):
    (tmp_path / "precious.tif").write_bytes(b"data")
    prepare_out_dir(tmp_path, overwrite=True)
    assert (tmp_path / "precious.tif").read_bytes() == b"data"
    assert not (tmp_path / MARKER).exists()  # it does not become the demo's own folder


def test_prepare_out_dir_refuses_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        prepare_out_dir(f)


def test_cli_demo_refuses_foreign_nonempty_folder(tmp_path, capsys):
    (tmp_path / "precious.tif").write_bytes(b"data")
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 1
    assert "not created by 'deepcontrast demo'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.tif"]


def test_cli_demo_axes_without_input_is_an_error(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--axes", "ZYX"]) == 1
    assert "--input" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_run_demo_input_without_axes_is_an_error(tmp_path):
    from deepcontrast.demo import run_demo

    with pytest.raises(ValueError, match="axes"):
        run_demo(tmp_path / "d", input=np.zeros((4, 32, 32), np.float32))


def test_cli_demo_missing_input_creates_nothing(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--input", str(tmp_path / "nope.tif"), "--axes", "ZYX"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


# -- settings and 2D-on-slices helpers ----------------------------------------------------------
def test_demo_settings_are_fresh_copies():
    s = demo_settings()
    s["shape"] = (1, 1, 1)
    assert demo_settings()["shape"] != (1, 1, 1)


def test_quick_settings_are_smaller():
    d, q = demo_settings(), demo_settings(quick=True)
    assert np.prod(q["shape"]) < np.prod(d["shape"])
    assert q["train_epochs"] * q["train_steps_per_epoch"] < d["train_epochs"] * d["train_steps_per_epoch"]


def test_demo_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "suggested n_iter" in printed and "TF_SavedModel.zip" in printed
    for name in ("metrics.json", "contrast_profile.png", "iterations.png", "tradeoff.png", "demo_summary.json",
                 "raw.tif", "iteration_1.tif", "iteration_2.tif", "clahe.tif", "richardson_lucy.tif",
                 "ground_truth.tif", "data/training_data.npz", "data/training_data.settings.json",
                 "models/demo_model/config.json", "models/demo_model/weights_best.h5",
                 "models/demo_model/TF_SavedModel.zip", MARKER):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["iterations"]
    assert rows[0]["label"] == "raw" and len(rows) == 3
    gains = [r["all"]["contrast_gain"] for r in rows]
    assert gains[1] > gains[0] == 1.0, gains  # contrast rises over the raw
    assert {"clahe", "richardson_lucy"} <= set(metrics["baselines"])
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["quality"]["region"] == "deepest_third"
    assert summary["settings"]["shape"] == list(demo_settings(quick=True)["shape"])
    # the training history is stored once, in the model folder
    side = json.loads((out / "models" / "demo_model" / "deepcontrast.json").read_text())
    assert "history" not in summary and len(side["history"]) == demo_settings(quick=True)["train_epochs"]


def test_microscope_describes_the_input_only(tmp_path, capsys):
    from deepcontrast.demo import run_demo

    with pytest.raises(ValueError, match="describes the input stack"):
        run_demo(tmp_path / "d", microscope="widefield")
    assert main(["demo", "--out", str(tmp_path / "d"), "--microscope", "widefield"]) == 1
    assert "--input" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_microscope_reaches_the_calibration_of_an_input_stack(tmp_path):
    from deepcontrast.data import load_settings, synthetic_tissue
    from deepcontrast.demo import steps
    from deepcontrast.demo.settings import demo_settings

    s = demo_settings(quick=True)
    stack, _ = synthetic_tissue((12, 64, 64), rng=0)
    sample = steps.load_sample(s, stack, "ZYX", (2.0, 0.5, 0.5), "first", 0.0, 0, tmp_path, "widefield")
    data = steps.make_training_data(s, sample, tmp_path / "data", 1)
    settings = load_settings(data.paths["training_data"])
    assert settings["calibration"]["mode"] == "widefield"


def test_surface_auto_reaches_the_training_data_of_an_input_stack(tmp_path):
    from deepcontrast.data import load_settings, synthetic_tissue
    from deepcontrast.demo import steps
    from deepcontrast.demo.settings import demo_settings

    s = demo_settings(quick=True)
    stack, _ = synthetic_tissue((12, 64, 64), rng=0)  # fills the field: the map found is flat (wiring only)
    sample = steps.load_sample(s, stack, "ZYX", (2.0, 0.5, 0.5), "auto", 0.0, 0, tmp_path)
    data = steps.make_training_data(s, sample, tmp_path / "data", 1)
    settings = load_settings(data.paths["training_data"])
    assert settings["surface"] == "auto" and settings["depth_map"]["surface"] == "first"
    assert settings["calibration"]["inputs"]["depth_map"]["source"] == "surface_depth(surface='first')"
