"""The steps of :func:`deepcontrast.demo.run_demo` (internal; see there)."""
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np

log = logging.getLogger(__name__)


def load_sample(s, input, axes, voxel_size, surface, depth, seed, out):
    """The built-in sample (with clean truth) or the user's stack; writes ground_truth.tif."""
    from ..cli._common import read_tiff, write_tiff
    from ..degradation import DeepTissueDegradation

    paths = {}
    if input is None:
        from ..data import synthetic_tissue

        deg = DeepTissueDegradation(photons=s["photons"])
        image, clean = synthetic_tissue(tuple(s["shape"]), voxel_size=tuple(s["voxel_size"]), degradation=deg, rng=seed)
        axes, voxel_size, surface, depth = "ZYX", tuple(s["voxel_size"]), "first", 0.0
        paths["ground_truth"] = write_tiff(out / "ground_truth.tif", clean.astype(np.float32), axes=axes)
        degradation = deg
        log.info("built-in sample: synthetic tissue %s, %s um voxels, %d-%d um deep", image.shape, voxel_size,
                 0, int(round((image.shape[0] - 1) * voxel_size[0])))
    else:
        from .._axes import check_image_axes

        image = read_tiff(input) if isinstance(input, (str, Path)) else np.asarray(input)
        image, axes = check_image_axes(image, axes, name=f"input {input if isinstance(input, (str, Path)) else 'array'}",
                                       allowed="ZYX")
        clean, degradation = None, "auto"
        log.info("input stack %s with axes %s; forward model calibrated from it", image.shape, axes)
    return SimpleNamespace(image=image, clean=clean, axes=axes, voxel_size=voxel_size, surface=surface,
                           depth=float(depth), degradation=degradation, paths=paths)


def make_training_data(s, sample, data_dir, seed):
    """Degrade the sample with the forward model and cut patches into data_dir/training_data.npz."""
    from csbdeep.io import save_training_data

    from ..data import DegradedRawData, create_patches
    from .slices import squeeze_axis

    rng = np.random.default_rng(seed)
    raw_data = DegradedRawData.from_arrays(
        [sample.image], sample.axes, sample.degradation, tuple(s["extra_depth"]),
        n_degradations=s["n_degradations"], voxel_size=sample.voxel_size, surface=sample.surface,
        depth=sample.depth, rng=rng,
    )
    file = Path(data_dir) / "training_data.npz"
    slices = s["slices_2d"] and "Z" in sample.axes
    patch_size = ((1,) if slices else ()) + tuple(s["patch_size"])
    if "Z" in sample.axes and not slices:
        patch_size = (16,) + tuple(s["patch_size"])
    n_per = max(1, s["n_patches_per_image"] // s["n_degradations"])
    if slices:
        X, Y, axes = create_patches(raw_data, patch_size, n_per, save_file=None, verbose=False)
        X, Y, axes = squeeze_axis(X, Y, axes, "Z")
        save_training_data(file, X, Y, axes)
        _write_settings(file, raw_data.settings)
    else:
        X, Y, axes = create_patches(raw_data, patch_size, n_per, save_file=file, verbose=False)
    log.info("%d training pairs of %s patches (axes %s) in %s", len(X), X.shape[2:] if axes[1] == "C" else X.shape[1:],
             axes, file)
    paths = {"training_data": file}
    from ..data import settings_path

    if settings_path(file).exists():
        paths["training_data_settings"] = settings_path(file)
    return SimpleNamespace(file=file, settings=raw_data.settings, paths=paths)


def _write_settings(file, settings):
    from ..data import settings_path

    p = settings_path(file)
    tmp = p.with_name("." + p.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=2))
    tmp.replace(p)


def train(s, data, basedir, name):
    """Train a DeepContrast model on data.file; returns (model, history dict)."""
    import shutil

    from csbdeep.io import load_training_data

    from ..models import Config, DeepContrast
    from .slices import SliceWiseModel

    (X, Y), (Xv, Yv), axes = load_training_data(data.file, validation_split=s["validation_split"], verbose=False)
    c = axes.index("C")
    config = Config(
        axes, X.shape[c], Y.shape[c], probabilistic=False,
        unet_n_depth=s["unet_n_depth"], unet_n_first=s["unet_n_first"],
        train_batch_size=s["train_batch_size"], train_epochs=s["train_epochs"],
        train_steps_per_epoch=s["train_steps_per_epoch"], train_learning_rate=s["train_learning_rate"],
        degradation_settings=data.settings,
    )
    folder = Path(basedir) / name
    if folder.exists() and (Path(basedir).parent / ".deepcontrast_demo").exists():
        shutil.rmtree(folder)  # the demo's own model from an earlier run
    model = DeepContrast(config, name, basedir=str(basedir))
    log.info("training a %s network (%d+%d patches, %d epochs x %d steps of batch %d)", axes.replace("S", "").replace("C", ""),
             len(X), len(Xv), config.train_epochs, config.train_steps_per_epoch, config.train_batch_size)
    hist = model.train(X, Y, validation_data=(Xv, Yv))
    history = getattr(hist, "history", None) or {}
    if "Z" not in config.axes:
        model = SliceWiseModel(model)
    return model, history


def evaluate(s, model, sample, out):
    """Iterative prediction + evaluation (metrics.json, figures, TIFFs in out)."""
    from ..evaluate import evaluate_model

    return evaluate_model(model, sample.image, sample.axes, n_iter=s["n_iter"], ground_truth=sample.clean,
                          voxel_size=sample.voxel_size, surface=sample.surface, depth=sample.depth,
                          baselines=True, out_dir=out)


def deep_third(sample, out, report):
    """PSNR/SSIM vs the clean truth in the deepest third of the stack (raw, iterations, baselines)."""
    raise NotImplementedError


def export(model, path):
    """Export the model for Fiji's CSBDeep plugin."""
    path = Path(path)
    if path.exists():
        path.unlink()
    model = getattr(model, "model", model)
    return Path(model.export_TF(path))


def summary(report, deep, timings):
    """The printed summary: evaluate's table, the deepest third, the timings."""
    from ..evaluate import format_table

    lines = [format_table(report)]
    if deep:
        lines += ["", "deepest third of the stack vs the clean truth:", f"  {'':12s} {'PSNR (dB)':>10s} {'SSIM':>7s}"]
        for name, m in deep.items():
            lines.append(f"  {name:12s} {m['psnr']:10.2f} {m['ssim']:7.3f}")
    lines += ["", "time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())]
    return "\n".join(lines)
