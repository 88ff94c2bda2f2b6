"""Stacks with out-of-focus light: does calibration see it, and does training remove it?

Part 1 (calibration): ``synthetic_tissue`` rendered with ``DeepTissueDegradation(photons=50,
out_of_focus=o)`` for ``o`` in {0, 0.5, 1, 2} and seeds 0..9. Printed per ``o``: how often the
stack is called widefield, the median and worst relative error of ``out_of_focus`` and of
``attenuation_length`` (true 150 um), and the fitted blur and haze parameters.

Part 2 (training, the package's public route, per-plane 2D network as in the demo):
``DegradedRawData.from_arrays(...) -> per_slice -> create_patches -> DeepContrast.train ->
predict_iterative`` on one widefield render (``--train-oof``), for

* ``'auto'``: the degradation calibrated on the render (what a user gets);
* ``known``: the calibrated model with the true ``out_of_focus`` and the model's own depth
  increment of out-of-focus light, ``(w(z+d) - w(z)) / (1 + w(z))`` (what the package adds,
  :meth:`DeepTissueDegradation.out_of_focus_increment`);
* ``pass``: the same model with one whole out-of-focus pass ``w(z+d)`` at the new depth (an
  alternative that was tried and not kept, see the ``DeepTissueDegradation`` Notes).

Per iteration: mean per-plane correlation with the confocal render (same structure and seed,
``out_of_focus=0``, no noise), PSNR/SSIM of the deepest third against the clean truth
(affine-normalized: the restoration's goal is the structure, and an affine map forgives the
intensity scale that out-of-focus light and attenuation change) and against the noise-free
confocal render, and the deepest third's mean, 99.5th percentile and minimum (raw intensity
units).

Run: ``python benchmarks/bench_widefield.py`` (about 15 minutes on a 2-core CPU);
``--no-train`` prints part 1 only, ``--no-calibration`` part 2 only.
"""
import argparse
import logging
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from deepcontrast import DeepTissueDegradation  # noqa: E402
from deepcontrast.data import DegradedRawData, create_patches, per_slice, synthetic_tissue  # noqa: E402
from deepcontrast.metrics import psnr, ssim  # noqa: E402

VS = (2.0, 0.5, 0.5)


class _OutOfFocusPass(DeepTissueDegradation):
    """The alternative training increment: one whole out-of-focus pass ``w(z + d)``."""

    def out_of_focus_increment(self, z, extra_depth):
        return self.out_of_focus_weight(np.asarray(z, float) + extra_depth)


def calibration_part(args):
    print(f"calibration on synthetic_tissue {tuple(args.shape)}, photons=50, attenuation_length=150, seeds 0-{args.seeds - 1}")
    print(f"{'oof':>5} {'widefield':>10} {'oof med err':>12} {'oof max err':>12} {'L med err':>10} {'L max err':>10}"
          f" {'blur_rate':>14} {'scat_len':>14} {'haze_sigma':>14} {'haze_rate':>14} {'s/fit':>6}")
    for oof in args.oofs:
        wide, e_oof, e_l, vals, times = 0, [], [], {k: [] for k in ("blur_rate", "scattering_length", "haze_sigma",
                                                                    "haze_rate")}, []
        for seed in range(args.seeds):
            obs, _ = synthetic_tissue(tuple(args.shape), voxel_size=VS,
                                      degradation=DeepTissueDegradation(photons=50, out_of_focus=oof), rng=seed)
            t = time.perf_counter()
            deg, report = DeepTissueDegradation.calibrate(obs, "ZYX", voxel_size=VS)
            times.append(time.perf_counter() - t)
            wide += report.mode == "widefield"
            if oof:
                e_oof.append(abs(deg.out_of_focus / oof - 1))
            e_l.append(abs(deg.attenuation_length / 150 - 1))
            for k in vals:
                vals[k].append(np.inf if getattr(deg, k) is None else getattr(deg, k))
        fmt = (lambda e: f"{100 * np.median(e):11.0f}% {100 * np.max(e):11.0f}%") if e_oof else (lambda e: f"{'-':>12} {'-':>12}")
        spread = {k: f"{np.median(v):.3g} [{np.min(v):.3g},{np.max(v):.3g}]" for k, v in vals.items()}
        print(f"{oof:5g} {wide:>7d}/{args.seeds:<2d} {fmt(e_oof)} {100 * np.median(e_l):9.0f}% {100 * np.max(e_l):9.0f}%"
              f" {spread['blur_rate']:>14} {spread['scattering_length']:>14} {spread['haze_sigma']:>14}"
              f" {spread['haze_rate']:>14} {np.mean(times):6.2f}")


def train_route(observed, degradation, args, basedir, name):
    """Per-plane 2D training as the demo does it; returns the iterates and the training time."""
    import keras
    from csbdeep.io import load_training_data

    from deepcontrast.models import Config, DeepContrast

    keras.utils.disable_interactive_logging()
    rng = np.random.default_rng(args.seed)
    raw = DegradedRawData.from_arrays([observed], "ZYX", degradation, (10, 40), n_degradations=4, voxel_size=VS, rng=rng)
    n_per = max(1, args.patches // 4 // observed.shape[0])
    file = os.path.join(basedir, f"{name}.npz")
    create_patches(per_slice(raw), (64, 64), n_per, save_file=file, verbose=False, rng=rng)
    (X, Y), (Xv, Yv), axes = load_training_data(file, validation_split=0.1, verbose=False)
    config = Config(axes, X.shape[-1], Y.shape[-1], unet_n_depth=3, unet_n_first=16, train_batch_size=16,
                    train_epochs=args.epochs, train_steps_per_epoch=args.steps, train_learning_rate=4e-4,
                    degradation_settings=raw.settings, normalize_per_slice=True)
    model = DeepContrast(config, name, basedir=basedir)
    t = time.perf_counter()
    model.train(X, Y, validation_data=(Xv, Yv))
    t_train = time.perf_counter() - t
    return model.predict_iterative(observed, "ZYX", args.n_iter), raw.degradation, t_train


def _corr(a, b):
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    return float(np.mean((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))))


def _lowpass(img, sigma_um=2.0):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(img, (0, sigma_um / VS[1], sigma_um / VS[2]))


def table_rows(label, images, confocal, clean, deep, first=0):
    for i, img in enumerate(images, start=first):
        d = img[deep]
        print(f"  {label:<8} {i:>4} {_corr(img, confocal):8.4f} {_corr(_lowpass(img), _lowpass(confocal)):8.4f}"
              f" {psnr(d, clean[deep]):8.2f} {ssim(d, clean[deep]):7.3f}"
              f" {psnr(d, confocal[deep]):9.2f} {d.mean():8.4f} {np.percentile(d, 99.5):8.4f} {d.min():8.4f}")


def training_part(args):
    true = DeepTissueDegradation(photons=50, out_of_focus=args.train_oof)
    observed, clean = synthetic_tissue(tuple(args.train_shape), voxel_size=VS, degradation=true, rng=args.seed)
    confocal, _ = synthetic_tissue(tuple(args.train_shape), voxel_size=VS,
                                   degradation=DeepTissueDegradation(photons=None), rng=args.seed)
    deep = slice(2 * args.train_shape[0] // 3, None)
    calibrated, report = DeepTissueDegradation.calibrate(observed, "ZYX", voxel_size=VS)
    print(f"\ntraining on a widefield render {tuple(args.train_shape)}, out_of_focus={args.train_oof}, seed {args.seed};"
          f" calibration: mode {report.mode}, out_of_focus {calibrated.out_of_focus:.3g}")
    known = calibrated.replace(out_of_focus=args.train_oof)
    routes = (("auto", "auto"), ("known", known), ("pass", _OutOfFocusPass(**known.to_dict())))
    print(f"  {'route':<8} {'iter':>4} {'corr':>8} {'corr>2um':>8} {'PSNR':>8} {'SSIM':>7} {'PSNR(cf)':>9} {'mean':>8} {'p99.5':>8} {'min':>8}"
          "\n  (corr: mean per-plane correlation with the noise-free confocal render; corr>2um: the same after a"
          " 2 um Gaussian, where out-of-focus light lives and noise does not; PSNR/SSIM vs the clean truth,"
          " PSNR(cf) vs the confocal render, mean/p99.5/min: deepest third)")
    table_rows("raw", [observed], confocal, clean, deep)
    with tempfile.TemporaryDirectory() as tmp:
        for name, degradation in routes:
            iterates, used, t_train = train_route(observed, degradation, args, tmp, name)
            table_rows(name, iterates, confocal, clean, deep, first=1)
            print(f"  ({name}: out_of_focus {used.out_of_focus:.3g}, training {t_train:.0f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(48, 192, 192))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--oofs", type=float, nargs="+", default=(0.0, 0.5, 1.0, 2.0))
    ap.add_argument("--train-shape", type=int, nargs=3, default=(48, 192, 192))
    ap.add_argument("--train-oof", type=float, default=1.0)
    ap.add_argument("--patches", type=int, default=3072)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--n-iter", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-calibration", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.no_calibration:
        calibration_part(args)
    if not args.no_train:
        training_part(args)


if __name__ == "__main__":
    main()
