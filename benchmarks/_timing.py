"""Timing shared by the benchmarks: contenders timed round-robin in the same run."""
import time


def best_times(fns, repeat, warmup=True, clock=time.perf_counter):
    """Best-of-``repeat`` seconds per function, measured round-robin after one warm-up each.

    Round-robin order spreads load changes of a shared machine over all contenders. Returns
    ``({name: seconds}, {name: last output})``. ``clock=time.process_time`` counts the CPU
    time of all threads instead of the wall time.
    """
    outs = {k: fn() for k, fn in fns.items()} if warmup else {}  # warm-up (tracing, halo measurement)
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = clock()
            outs[k] = fn()
            times[k].append(clock() - t)
    return {k: min(v) for k, v in times.items()}, outs
