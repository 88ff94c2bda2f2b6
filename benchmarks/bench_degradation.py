"""Throughput of the forward model against a naive scipy.ndimage baseline, same run.

Degrades a 64x512x512 float32 volume (voxel 2, 0.5, 0.5 um, default parameters, haze on)
with ``DeepTissueDegradation`` and with the naive approach: per slice, two
``scipy.ndimage.gaussian_filter`` calls (ballistic increment and halo, each with that slice's
own 3D sigma applied to the whole stack and the slice taken out). Prints Mvoxel/s of both,
their ratio and the peak extra memory of ours relative to the volume.

The physical floor of the method is one real FFT round trip per slice: the time of ours is
also printed as a ratio to ``scipy.fft.rfft2`` + ``irfft2`` of the same volume with the same
workers, timed interleaved with ours in the same run (target <= 3).

    python benchmarks/bench_degradation.py [--shape 64,512,512] [--repeat 3] [--skip-naive]
"""
import argparse
import time
import tracemalloc

import numpy as np
from scipy import fft as sfft
from scipy.ndimage import gaussian_filter

from deepcontrast import DeepTissueDegradation


def naive(deg, vol, extra, vs, depth=0.0):
    """Per-slice gaussian_filter with each slice's own sigmas (what one writes first)."""
    n_z = vol.shape[0]
    z = depth + vs[0] * np.arange(n_z)
    ra = np.exp(-extra / deg.attenuation_length)
    rb = np.exp(-extra / deg.scattering_length)
    out = np.empty_like(vol)
    for k in range(n_z):
        s_b = deg.blur_rate * np.sqrt(2 * z[k] * extra + extra**2)
        s_h = deg.haze_width(z[k] + extra)
        # only the neighbourhood of slice k matters: crop Z to 4 sigma around it
        r = int(np.ceil(4 * max(s_b, s_h) / vs[0]))
        lo, hi = max(0, k - r), min(n_z, k + r + 1)
        sub = vol[lo:hi]
        ball = gaussian_filter(sub, [s_b / v for v in vs], mode="reflect")[k - lo]
        haze = gaussian_filter(sub, [s_h / v for v in vs], mode="reflect")[k - lo]
        out[k] = ra * (rb * ball + (1 - rb) * haze)
    return out


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_times_interleaved(fns, repeat):
    """Best-of-``repeat`` seconds per function, round-robin (load changes hit all alike)."""
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: min(v) for k, v in times.items()}


def fft_round_trip(vol):
    """The floor: one real FFT round trip per slice, same workers as the forward model."""
    return sfft.irfft2(sfft.rfft2(vol, workers=-1), s=vol.shape[-2:], workers=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="64,512,512")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-naive", action="store_true", help="skip the (slow) naive scipy.ndimage baseline")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    vs = (2.0, 0.5, 0.5)
    vol = np.random.default_rng(0).random(shape, dtype=np.float32)
    deg = DeepTissueDegradation()
    extra = 30.0
    nvox = vol.size / 1e6

    ours = lambda: deg(vol, "ZYX", extra, voxel_size=vs)  # noqa: E731
    ours()  # warm-up (FFT plans)
    fft_round_trip(vol)
    t = best_times_interleaved({"ours": ours, "fft": lambda: fft_round_trip(vol)}, args.repeat)
    t_ours, t_fft = t["ours"], t["fft"]
    if not args.skip_naive:
        t_naive = best_time(lambda: naive(deg, vol, extra, vs), 1)
        a, b = ours(), naive(deg, vol, extra, vs)
        dev = np.abs(a - b).max() / (b.max() - b.min())

    tracemalloc.start()
    ours()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"volume {shape} float32 ({vol.nbytes / 2**20:.0f} MiB), voxel {vs} um, extra_depth {extra} um")
    print(f"deepcontrast : {nvox / t_ours:7.1f} Mvoxel/s  ({t_ours:.2f} s)")
    print(f"rfft2+irfft2 : {nvox / t_fft:7.1f} Mvoxel/s  ({t_fft:.2f} s, same volume, workers=-1)")
    print(f"ours / FFT round trip: {t_ours / t_fft:5.2f}x  (target <= 3)")
    if not args.skip_naive:
        print(f"naive scipy  : {nvox / t_naive:7.1f} Mvoxel/s  ({t_naive:.2f} s)")
        print(f"speed-up     : {t_naive / t_ours:7.1f}x")
        print(f"max deviation from naive: {dev:.2e} of the output range")
    print(f"peak extra memory: {peak / vol.nbytes:.1f}x the volume")


if __name__ == "__main__":
    main()
