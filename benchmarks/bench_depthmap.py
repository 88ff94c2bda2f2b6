"""Cost and accuracy of the forward model with a depth per voxel, against today's scalar depth.

On ``synthetic_spheroid`` (default 48x192x192, voxel 2, 0.5, 0.5 um; depths 0-90 um) times
``render`` and ``__call__`` (extra_depth 30) of the default model with the spheroid's true
per-voxel depth map and with a scalar depth (today's path, slice depths from the first
slice), round-robin in the same run, and prints their ratio (target <= 2); ``--photons 50``
times them with shot noise, as training data is made. Also prints the
CPU time ratio (all threads) and the error of the binned interpolation against a reference
with very fine bins, as fractions of the image's range.

On a shared machine, pin it to one core with one BLAS thread for steady figures (the scalar
path's matrix products suffer most from a busy second core):

    OPENBLAS_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_depthmap.py [--shape 48,192,192]
        [--repeat 7] [--tol 0.02]
"""
import argparse
import time

import numpy as np

from _timing import best_times

import deepcontrast._depthmap as depthmap
from deepcontrast import DeepTissueDegradation
from deepcontrast.data import synthetic_spheroid


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="48,192,192")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--tol", type=float, default=None, help="TF_TOLERANCE (default: the package's)")
    ap.add_argument("--photons", type=float, default=None,
                    help="shot noise of the timed model (training data has noise: e.g. 50); default none")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    vs = (2.0, 0.5, 0.5)
    if args.tol is not None:
        depthmap.TF_TOLERANCE = args.tol
    deg = DeepTissueDegradation(photons=args.photons)
    observed, clean, depth = synthetic_spheroid(shape, voxel_size=vs, degradation=deg.replace(photons=50))
    fns = {
        "render scalar": lambda: deg.render(clean, "ZYX", voxel_size=vs),
        "render map": lambda: deg.render(clean, "ZYX", depth=depth, voxel_size=vs),
        "call scalar": lambda: deg(observed, "ZYX", 30.0, voxel_size=vs),
        "call map": lambda: deg(observed, "ZYX", 30.0, depth=depth, voxel_size=vs),
    }
    wall, outs = best_times(fns, args.repeat)
    cpu, _ = best_times(fns, args.repeat, warmup=False, clock=time.process_time)
    bins = {}
    orig = depthmap.bin_depths
    for what in ("render", "call"):
        depthmap.bin_depths = lambda *a, **k: bins.setdefault(what, orig(*a, **k))
        fns[f"{what} map"]()
    depthmap.bin_depths = orig
    print(f"shape {shape}, depths 0-{depth.max():.0f} um, TF_TOLERANCE {depthmap.TF_TOLERANCE}, photons {args.photons}")
    for what in ("render", "call"):
        print(f"{what:6s}: scalar {wall[what + ' scalar']:.3f} s, map {wall[what + ' map']:.3f} s "
              f"({len(bins[what])} bins): wall ratio {wall[what + ' map'] / wall[what + ' scalar']:.2f}, "
              f"CPU ratio {cpu[what + ' map'] / cpu[what + ' scalar']:.2f}")
    if args.photons is not None:
        return  # the error needs noise-free outputs
    tol, grid, most = depthmap.TF_TOLERANCE, depthmap.GRID, depthmap.MAX_BINS
    depthmap.TF_TOLERANCE, depthmap.GRID, depthmap.MAX_BINS = 1e-4, 400, 400
    ref = {"render": fns["render map"](), "call": fns["call map"]()}
    depthmap.TF_TOLERANCE, depthmap.GRID, depthmap.MAX_BINS = tol, grid, most
    for what in ("render", "call"):
        err = np.abs(outs[what + " map"] - ref[what]) / np.ptp(ref[what])
        print(f"{what:6s}: interpolation error vs fine bins: max {err.max():.2e}, RMS {np.sqrt(np.mean(err**2)):.2e} "
              "of the range")


if __name__ == "__main__":
    main()
