"""Acceptance run on one real stack: the README's two routes with default settings, as a new user runs them.

Every change to a default (precision, network, normalization, physical step, training schedule)
is run through this on a real stack before it lands. Both routes train with
``degradation='auto'`` (the forward model calibrated from the stack), ``extra_depth=(10, 40)``
and ``precision='auto'``:

* **3D**: ``DegradedRawData.from_arrays(..., n_degradations=4)``, ``create_patches(..., (8, 64, 64),
  128)``, ``Config(axes, 1, 1, train_epochs=15, train_steps_per_epoch=30, train_batch_size=4)``
  (every other setting the package default);
* **per-plane** (the demo's route for anisotropic stacks): ``per_slice`` patches of 64 x 64,
  3072 in all, a 2D U-Net of depth 3 and 32 first filters, batch 16, 15 x 30 steps,
  ``normalize_per_slice=True``.

Printed per route: the precision 'auto' chose, whether training stayed finite (no guard trip,
every weight finite), the final loss and validation loss, the wall times, and per iteration
(1-3, physical iterates) for the deepest third of the stack: RMS contrast relative to the raw's,
mean and 99.5th percentile relative to the raw's, minimum (and whether it is below the
background) and detail retention. No truth exists for real data: these say whether contrast
rises from light moved into structures (mean kept, p99.5 up) rather than from darkening.

Usage::

    python benchmarks/bench_real.py STACK --axes ZYX --voxel-size 5,2,2 --surface last \\
        [--planes 0:10] [--steps 450] [--routes 3d,per-plane] [--json out.json]

STACK is a TIFF stack, a folder of single-plane TIFFs (sorted by name) or a glob of them. With
the serial two-photon mouse brain planes (three physical sections of 10 planes each), take one
section with ``--planes 0:10``; intensity climbs within each block, so the surface is the last
plane. About 35 minutes on a 2-core CPU without native bfloat16 for both routes.
"""
import argparse
import glob
import json
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _routes import train_readme_route  # noqa: E402  (benchmarks/, run as a script)



def read_stack(source, planes=None):
    """A TIFF stack, or single-plane TIFFs (folder or glob) stacked along the first axis."""
    import tifffile

    path = Path(source)
    if path.is_file():
        stack = tifffile.imread(path)
    else:
        files = sorted(path.glob("*.tif*")) if path.is_dir() else sorted(Path(f) for f in glob.glob(source))
        if not files:
            raise SystemExit(f"no TIFF files in {source}")
        stack = np.stack([tifffile.imread(f) for f in files])
    if planes:
        start, stop = (int(v) if v else None for v in planes.split(":"))
        stack = stack[start:stop]
    return stack.astype(np.float32)


def schedule(total):
    epochs = min(15, total)
    return epochs, max(1, total // epochs)


def train_route(route, stack, args, basedir):
    """(model, history, seconds) of one route trained on ``stack``."""
    epochs, steps = schedule(args.steps)
    model, _, history, seconds = train_readme_route(route, stack, args.axes, voxel_size=args.voxel_size,
                                                    surface=args.surface, epochs=epochs, steps=steps, seed=args.seed,
                                                    basedir=basedir, name=route)
    return model, history, seconds


def measure(stack, iterates, args, background):
    from deepcontrast.evaluate import evaluate_iterates

    report = evaluate_iterates(stack, iterates, args.axes, voxel_size=args.voxel_size, surface=args.surface,
                               background=background)
    key = "deepest_third" if "deepest_third" in report["regions"] else "all"
    raw = report["iterations"][0][key]
    rows = []
    for k, r in enumerate(report["iterations"][1:], 1):
        d = r[key]
        rows.append(dict(iteration=k, contrast=d["contrast_gain"], mean=d["mean"] / raw["mean"],
                         p99_5=d["p99_5"] / raw["p99_5"], min=d["min"], below_background=d["below_background"],
                         detail=d["detail_retention"]))
    return report["regions"][key], raw, rows


def run_route(route, stack, args, basedir):
    from deepcontrast.models.guard import weights_problem

    t0 = time.time()
    try:
        model, history, train_s = train_route(route, stack, args, basedir)
    except ValueError as e:  # the guard stopped an explicit precision
        return dict(route=route, finite=False, error=str(e), wall_s=time.time() - t0)
    finite = weights_problem(model.keras_model.get_weights()) is None
    t = time.time()
    iterates = model.predict_iterative(stack, args.axes, 3)
    predict_s = time.time() - t
    region, raw, rows = measure(stack, iterates, args, model.background)
    trainings = model._side.get("trainings", [])
    deg = (model.degradation_settings or {}).get("degradation") or {}
    return dict(route=route, precision=model.precision, finite=finite, degradation=deg,
                restarted=any(t.get("restarted_in") for t in trainings),
                loss=history["loss"][-1], val_loss=history["val_loss"][-1], train_s=train_s, predict_s=predict_s,
                wall_s=time.time() - t0, region=region, raw_min=raw["min"], iterations=rows)


def show(r):
    print(f"\n== {r['route']} route ==")
    if "error" in r:
        print(f"  training stopped: {r['error']}")
        return
    print(f"  precision {r['precision']}{' (restarted in float32 by the guard)' if r['restarted'] else ''}; "
          f"training finite: {'yes' if r['finite'] else 'NO'}; final loss {r['loss']:.4f}, val_loss {r['val_loss']:.4f}")
    print(f"  time: training {r['train_s'] / 60:.1f} min, 3 iterations {r['predict_s']:.0f} s, "
          f"route {r['wall_s'] / 60:.1f} min")
    keys = ("attenuation_length", "scattering_length", "blur_rate", "haze_sigma", "photons", "background")
    print("  calibrated: " + ", ".join(f"{k} {r['degradation'].get(k)}" for k in keys))
    print(f"  deepest third {r['region']}; raw minimum {r['raw_min']:.1f}")
    print(f"  {'':>11}{'contrast':>10}{'mean':>8}{'p99.5':>8}{'min':>10}{'detail':>8}")
    for row in r["iterations"]:
        flag = " <bg" if row["below_background"] else ""
        print(f"  {'iteration ' + str(row['iteration']):>11}{row['contrast']:9.2f}x{row['mean']:7.3f}x"
              f"{row['p99_5']:7.3f}x{row['min']:10.1f}{row['detail']:8.3f}{flag}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stack", help="TIFF stack, folder of single-plane TIFFs, or a glob of them")
    p.add_argument("--axes", default="ZYX")
    p.add_argument("--voxel-size", required=True, help="um per voxel along each axis, e.g. 5,2,2")
    p.add_argument("--surface", choices=("first", "last"), required=True)
    p.add_argument("--planes", help="START:STOP, planes of the stack to use (e.g. one physical section)")
    p.add_argument("--steps", type=int, default=450, help="training steps per route (default 450 = 15 x 30)")
    p.add_argument("--routes", default="3d,per-plane")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args()
    args.voxel_size = tuple(float(v) for v in args.voxel_size.split(","))
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("deepcontrast.models.precision").setLevel(logging.INFO)
    logging.getLogger("deepcontrast.models.kernels").setLevel(logging.INFO)
    import keras

    keras.utils.disable_interactive_logging()
    stack = read_stack(args.stack, args.planes)
    print(f"stack {args.stack}{' planes ' + args.planes if args.planes else ''}: {stack.shape} {args.axes}, "
          f"voxel {args.voxel_size} um, surface {args.surface}; {args.steps} training steps per route")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for route in args.routes.split(","):
            results.append(run_route(route, stack, args, tmp))
            show(results[-1])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
