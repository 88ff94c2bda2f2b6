"""Does calibrating the forward model on the raw data pay off?

The built-in sample is rendered at a noise level and attenuation different from the package
defaults (``--photons``, ``--attenuation``). Two small 2D DeepContrast networks are trained on
XY slices with the same budget, one on data degraded with ``degradation='auto'`` (the model
calibrated on the sample), one with the fixed default ``DeepTissueDegradation(photons=50)``.
Printed: the calibration (true vs fitted), its run time, and PSNR against the clean truth in
the deepest third of the stack for the raw stack and both models (iteration 1).

Run: ``python benchmarks/bench_calibration.py`` (a few minutes on a 2-core CPU);
``--no-train`` prints only the calibration.
"""
import argparse
import logging
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from deepcontrast import DeepTissueDegradation  # noqa: E402
from deepcontrast.data import DegradedRawData, create_patches, synthetic_tissue  # noqa: E402
from deepcontrast.metrics import psnr  # noqa: E402

VS = (2.0, 0.5, 0.5)


def train_and_predict(name, observed, degradation, args, basedir):
    import keras

    from deepcontrast.data import per_slice
    from deepcontrast.models import Config, DeepContrast

    keras.utils.disable_interactive_logging()

    rng = np.random.default_rng(args.seed)
    raw = DegradedRawData.from_arrays([observed], "ZYX", degradation, (10, 40), n_degradations=args.n_degradations,
                                      voxel_size=VS, rng=rng)
    n_per = max(1, args.patches // (args.n_degradations * observed.shape[0]))
    X, Y, axes = create_patches(per_slice(raw), (48, 48), n_per, verbose=False, rng=rng)
    c = axes.index("C")  # channel last, as csbdeep's load_training_data gives it
    X, Y, axes = np.moveaxis(X, c, -1), np.moveaxis(Y, c, -1), axes.replace("C", "") + "C"
    n_val = max(1, len(X) // 10)
    config = Config(axes, X.shape[-1], Y.shape[-1], unet_n_depth=2, unet_n_first=16, train_batch_size=16,
                    train_epochs=args.epochs, train_steps_per_epoch=args.steps, train_learning_rate=4e-4,
                    degradation_settings=raw.settings, normalize_per_slice=True)
    model = DeepContrast(config, name, basedir=basedir)
    t = time.time()
    model.train(X[n_val:], Y[n_val:], validation_data=(X[:n_val], Y[:n_val]))
    t_train = time.time() - t
    pred = model.predict(observed, "ZYX")
    return pred, raw.degradation, t_train


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(48, 128, 128))
    ap.add_argument("--photons", type=float, default=10.0)
    ap.add_argument("--attenuation", type=float, default=70.0)
    ap.add_argument("--background", type=float, default=0.05)
    ap.add_argument("--patches", type=int, default=1024)
    ap.add_argument("--n-degradations", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--figure", default=None, help="save the calibration figure here (png)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    true = DeepTissueDegradation(photons=args.photons, attenuation_length=args.attenuation, background=args.background)
    observed, clean = synthetic_tissue(tuple(args.shape), voxel_size=VS, degradation=true, rng=args.seed)
    t = time.time()
    deg, report = DeepTissueDegradation.calibrate(observed, "ZYX", voxel_size=VS)
    t_cal = time.time() - t
    print(f"sample {observed.shape}, true model: photons={true.photons}, attenuation_length={true.attenuation_length}, "
          f"background={true.background}")
    print(f"calibration ({t_cal:.2f} s):\n{report.summary()}")
    for k in ("photons", "attenuation_length", "background"):
        tv, fv = getattr(true, k), getattr(deg, k)
        print(f"  {k:<20} true {tv:<8g} fitted {fv:<10.4g} ratio {fv / tv if tv else float('nan'):.3f}")
    z = np.arange(args.shape[0]) * VS[0]
    trend = np.polyfit(z, np.log(clean.reshape(len(z), -1).mean(1)), 1)[0]
    print(f"  (the clean structure's own slice mean changes by {100 * trend:+.2f} %/um with depth; a stationary "
          f"structure would let the fit see 1/L = {1 / true.attenuation_length:.4f}/um, this one "
          f"{1 / true.attenuation_length - trend:.4f}/um, i.e. L = {1 / (1 / true.attenuation_length - trend):.1f} um)")
    if args.figure:
        report.figure().savefig(args.figure, dpi=100)
    if args.no_train:
        return
    deep = slice(2 * args.shape[0] // 3, None)
    print(f"\nPSNR vs clean truth, deepest third (slices {deep.start}-{args.shape[0] - 1}), affine-normalized:")
    print(f"  raw                               {psnr(observed[deep], clean[deep]):6.2f} dB")
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, degradation in (("auto", "auto"), ("default", DeepTissueDegradation(photons=50))):
            pred, used, t_train = train_and_predict(name, observed, degradation, args, tmp)
            results[name] = psnr(pred[deep], clean[deep])
            print(f"  degradation={name!r:<10} (photons={used.photons:.3g}, L={used.attenuation_length:.3g})"
                  f" {results[name]:6.2f} dB   (training {t_train:.0f} s)")
    print(f"  auto - default: {results['auto'] - results['default']:+.2f} dB")


if __name__ == "__main__":
    main()
