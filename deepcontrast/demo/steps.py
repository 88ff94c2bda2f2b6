"""The steps of :func:`deepcontrast.demo.run_demo` (internal; see there)."""
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np

log = logging.getLogger(__name__)


def load_sample(s, input, axes, voxel_size, surface, depth, seed, out, microscope="auto"):
    """The built-in sample (with clean truth) or the user's stack; writes ground_truth.tif."""
    from ..internals.tiff import read_tiff, write_tiff
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
        from ..internals.axes import check_image_axes

        image = read_tiff(input) if isinstance(input, (str, Path)) else np.asarray(input)
        image, axes = check_image_axes(image, axes, name=f"input {input if isinstance(input, (str, Path)) else 'array'}",
                                       allowed="ZYX")
        clean, degradation = None, "auto"
        log.info("input stack %s with axes %s; forward model calibrated from it", image.shape, axes)
    return SimpleNamespace(image=image, clean=clean, axes=axes, voxel_size=voxel_size, surface=surface,
                           depth=float(depth), degradation=degradation, microscope=microscope, paths=paths)


def make_training_data(s, sample, data_dir, seed):
    """Degrade the sample with the forward model and cut patches into data_dir/training_data.npz."""
    from ..data import DegradedRawData, create_patches, per_slice

    rng = np.random.default_rng(seed)
    raw_data = DegradedRawData.from_arrays(
        [sample.image], sample.axes, sample.degradation, tuple(s["extra_depth"]),
        n_degradations=s["n_degradations"], voxel_size=sample.voxel_size, surface=sample.surface,
        depth=sample.depth, rng=rng, microscope=sample.microscope,
    )
    from ..calibration import training_blur_notice

    notice = training_blur_notice(raw_data)  # said before training: e.g. "nothing to restore"
    if notice:
        log.warning("%s", notice)
    file = Path(data_dir) / "training_data.npz"
    n_per = max(1, s["n_patches_per_image"] // s["n_degradations"])
    if s["slices_2d"] and "Z" in sample.axes:
        # degrade the whole stack (each plane at its own depth), then patch every plane as an
        # image of its own, normalized on its own percentiles (as predict does with
        # Config(normalize_per_slice=True))
        n_z = sample.image.shape[sample.axes.index("Z")]
        raw_data, n_per = per_slice(raw_data), max(1, n_per // n_z)
        patch_size = tuple(s["patch_size"])
    elif "Z" in sample.axes:
        patch_size = (16,) + tuple(s["patch_size"])
    else:
        patch_size = tuple(s["patch_size"])
    X, Y, axes = create_patches(raw_data, patch_size, n_per, save_file=file, verbose=False, rng=rng)
    log.info("%d training pairs of %s patches (axes %s) in %s", len(X), X.shape[2:] if axes[1] == "C" else X.shape[1:],
             axes, file)
    paths = {"training_data": file}
    from ..data import settings_path

    if settings_path(file).exists():
        paths["training_data_settings"] = settings_path(file)
    return SimpleNamespace(file=file, settings=raw_data.settings, paths=paths, notice=notice)


def train(s, data, basedir, name, seed=None):
    """Train a DeepContrast model on data.file (``seed``: the batch order); returns (model, history dict)."""
    import shutil

    from csbdeep.io import load_training_data

    from ..models import Config, DeepContrast
    from .outdir import MARKER

    (X, Y), (Xv, Yv), axes = load_training_data(data.file, validation_split=s["validation_split"], verbose=False)
    c = axes.index("C")
    config = Config(
        axes, X.shape[c], Y.shape[c], probabilistic=False,
        degradation_settings=data.settings,  # decides normalize_per_slice: as the patches were normalized
        **{k: v for k, v in s.items() if k.startswith(("unet_", "train_"))},  # every network/training key
    )
    folder = Path(basedir) / name
    if folder.exists() and (Path(basedir).parent / MARKER).exists():
        shutil.rmtree(folder)  # the demo's own model from an earlier run (never in a foreign --overwrite folder)
    model = DeepContrast(config, name, basedir=str(basedir))
    log.info("training a %s network (%d+%d patches, %d epochs x %d steps of batch %d)", axes.replace("S", "").replace("C", ""),
             len(X), len(Xv), config.train_epochs, config.train_steps_per_epoch, config.train_batch_size)
    hist = model.train(X, Y, validation_data=(Xv, Yv), rng=seed)
    history = getattr(hist, "history", None) or {}
    return model, history


def evaluate(s, model, sample, out):
    """Iterative prediction + evaluation (metrics.json, figures, TIFFs in out)."""
    from ..evaluate import evaluate_model

    # out was checked by prepare_out_dir (the demo's own folder, or --overwrite): replace its report files
    from ..depth import resolve_depth

    # with surface='auto' the training data had per-voxel depth, and so has the consistency check; the
    # report's regions count slices from the end the light enters
    depth, surface = resolve_depth(sample.image, sample.axes, voxel_size=sample.voxel_size, surface=sample.surface,
                                   depth=sample.depth)
    return evaluate_model(model, sample.image, sample.axes, n_iter=s["n_iter"], ground_truth=sample.clean,
                          voxel_size=sample.voxel_size, surface=surface, depth=depth,
                          baselines=True, out_dir=out, overwrite=True)


def quality_check(report):
    """The quality bar of the built-in sample, read from an evaluation report with ground truth.

    In the deepest third of the stack (the whole image for 2D): the best iteration by PSNR
    raises PSNR against the clean truth by >= 2 dB over the raw and beats CLAHE and
    Richardson-Lucy on PSNR and SSIM; contrast (RMS, whole stack) rises with iterations 1 and 2.
    Returns a dict of the figures and ``passed``, or None without ground truth.
    """
    key = "deepest_third" if "deepest_third" in report["regions"] else "all"
    rows = report["iterations"]
    if "psnr" not in rows[0][key]:
        return None
    best = report["best_iteration_by_psnr"][key]
    raw, it = rows[0][key], rows[best][key]
    base = {name: b[key] for name, b in report["baselines"].items()}
    # contrast is judged on the whole stack: in the noisy deepest slices RMS contrast (std/mean) counts
    # noise as contrast, so denoising alone lowers it there (reported as contrast_gain_region)
    gains = [r["all"]["contrast_gain"] for r in rows]
    q = {
        "region": key,
        "best_iteration": best,
        "psnr_raw": raw["psnr"], "psnr_best": it["psnr"], "psnr_gain_db": it["psnr"] - raw["psnr"],
        "ssim_raw": raw["ssim"], "ssim_best": it["ssim"],
        "baselines": {name: {"psnr": b["psnr"], "ssim": b["ssim"]} for name, b in base.items()},
        "contrast_gain": gains[1:],
        "contrast_gain_region": [r[key]["contrast_gain"] for r in rows[1:]],
    }
    q["checks"] = {
        "psnr_gain_at_least_2dB": q["psnr_gain_db"] >= 2.0,
        "beats_baselines_psnr": all(it["psnr"] > b["psnr"] for b in base.values()),
        "beats_baselines_ssim": all(it["ssim"] > b["ssim"] for b in base.values()),
        "contrast_rises_iter_1_2": all(gains[k] > gains[k - 1] for k in range(1, min(3, len(gains)))),
    }
    q["passed"] = all(q["checks"].values())
    return q


def export(model, path):
    """Export the model for Fiji's CSBDeep plugin."""
    return Path(model.export_TF(path))  # replaces an earlier export atomically


def summary(report, quality, timings, notice=None):
    """The printed summary: the training data's notice (e.g. nothing to restore), evaluate's table (with restored
    depth and chi2 per third, or 'no restoration happened'), the quality check on the sample, the timings."""
    from ..evaluate import format_table

    truth = "psnr" in report["iterations"][0]["all"]
    lines = ([f"note (before training): {notice}", ""] if notice else []) + ["contrast gain (x raw), detail retention" + (", PSNR (dB) / SSIM vs the clean truth:" if truth else ":"),
             format_table(report)]
    if quality:
        where = "deepest third" if quality["region"] == "deepest_third" else "whole image"
        base = ", ".join(f"{n} {b['psnr']:.2f} dB / {b['ssim']:.3f}" for n, b in quality["baselines"].items())
        lines += ["", f"quality check ({where}): iteration {quality['best_iteration']} "
                      f"{quality['psnr_best']:.2f} dB / {quality['ssim_best']:.3f} vs raw {quality['psnr_raw']:.2f} dB / "
                      f"{quality['ssim_raw']:.3f} ({quality['psnr_gain_db']:+.2f} dB); {base}",
                  "  " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in quality["checks"].items())]
    lines += ["", "time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())]
    return "\n".join(lines)
