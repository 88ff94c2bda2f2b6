"""Benchmark: data generation with the forward model vs CSBDeep's own patch extraction.

Writes a folder of synthetic 3D stacks, then measures patches per second for

* ``DegradedRawData.from_folder`` + ``create_patches`` (read, degrade, extract), and
* ``csbdeep.data.RawData.from_folder`` + ``csbdeep.data.create_patches`` on the *same* pairs
  degraded beforehand and stored as TIFFs (read, extract: the pure CSBDeep cost),

in the same run, and prints their ratio (target: <= 2, i.e. the forward model costs no more
than CSBDeep's own extraction). Best of ``--repeat`` runs. About a minute on 2 CPU cores.

Usage: python benchmarks/bench_datagen.py [--n-stacks 4] [--shape 32,256,256] [--repeat 2]
"""
import argparse
import logging
import tempfile
import time
from pathlib import Path

import tifffile
from csbdeep.data import RawData
from csbdeep.data import create_patches as csbdeep_create_patches

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import DegradedRawData, create_patches, synthetic_tissue


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-stacks", type=int, default=4)
    p.add_argument("--shape", default="32,256,256")
    p.add_argument("--patch-size", default="16,64,64")
    p.add_argument("--n-patches", type=int, default=64)
    p.add_argument("--n-degradations", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    shape = tuple(int(v) for v in a.shape.split(","))
    patch = tuple(int(v) for v in a.patch_size.split(","))
    vs = (2.0, 0.5, 0.5)
    deg = DeepTissueDegradation(photons=50)
    kw = dict(n_degradations=a.n_degradations, voxel_size=vs, rng=0)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "raw").mkdir()
        for i in range(a.n_stacks):
            tifffile.imwrite(tmp / "raw" / f"stack{i}.tif", synthetic_tissue(shape, voxel_size=vs, rng=i)[0])
        # the same pairs, degraded beforehand: copy k of stack i -> deg<k>/stack<i>.tif
        rd = DegradedRawData.from_folder(tmp, ["raw"], "ZYX", deg, (10, 40), **kw)
        for j, (x, _, _, _) in enumerate(rd.generator()):
            d = tmp / f"deg{j % a.n_degradations}"
            d.mkdir(exist_ok=True)
            tifffile.imwrite(d / f"stack{j // a.n_degradations}.tif", x)
        n_total = a.n_stacks * a.n_degradations * a.n_patches

        def ours():
            r = DegradedRawData.from_folder(tmp, ["raw"], "ZYX", deg, (10, 40), **kw)
            return create_patches(r, patch, a.n_patches, verbose=False, rng=0)

        def baseline():
            r = RawData.from_folder(tmp, [f"deg{k}" for k in range(a.n_degradations)], "raw", axes="ZYX")
            return csbdeep_create_patches(r, patch, a.n_patches, verbose=False)

        t_ours, t_base = [], []
        for _ in range(a.repeat):
            for f, ts in ((baseline, t_base), (ours, t_ours)):
                t0 = time.perf_counter()
                X, _, _ = f()
                ts.append(time.perf_counter() - t0)
                assert len(X) == n_total
        degrade_only, noise_free = [], []
        img = tifffile.imread(tmp / "raw" / "stack0.tif")
        for _ in range(a.repeat):
            for model, ts in ((deg, degrade_only), (deg.replace(photons=None), noise_free)):
                t0 = time.perf_counter()
                model(img, "ZYX", 25.0, voxel_size=vs, rng=0)
                ts.append(time.perf_counter() - t0)

    tb, to = min(t_base), min(t_ours)
    print(f"{a.n_stacks} stacks {shape} x {a.n_degradations} degradations, {a.n_patches} patches "
          f"{patch} each = {n_total} patches (best of {a.repeat})")
    print(f"forward model alone:                       {min(degrade_only):7.3f} s per stack "
          f"({min(noise_free):.3f} s of it without Poisson noise)")
    print(f"CSBDeep create_patches on pre-degraded:    {tb:7.2f} s  {n_total / tb:8.1f} patches/s")
    print(f"DegradedRawData + create_patches:          {to:7.2f} s  {n_total / to:8.1f} patches/s")
    print(f"ratio (ours / CSBDeep time):               {to / tb:7.2f}   (target <= 2)")


if __name__ == "__main__":
    main()
