"""Timing shared by the benchmarks: contenders timed round-robin in the same run."""
import time


def best_times(fns, repeat, warmup=True):
    """Best-of-``repeat`` seconds per function, measured round-robin after one warm-up each.

    Round-robin order spreads load changes of a shared machine over all contenders. Returns
    ``({name: seconds}, {name: last output})``.
    """
    outs = {k: fn() for k, fn in fns.items()} if warmup else {}  # warm-up (tracing, halo measurement)
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            outs[k] = fn()
            times[k].append(time.perf_counter() - t)
    return {k: min(v) for k, v in times.items()}, outs
