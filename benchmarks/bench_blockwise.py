"""Blockwise prediction: throughput vs in-memory, peak memory vs volume size, 1 vs 2 dask workers.

Parts (all by default; one with ``--part``):

- ``throughput``: a volume that fits (32x512x512 float32), in-memory ``predict`` with
  ``n_tiles=(1, 2, 2)`` vs in-process ``predict_blockwise`` with blocks equal to those tiles'
  cores (same windows per network call); best of ``--repeat`` runs after a warm-up, round
  robin. Target: blockwise / in-memory throughput >= 0.9. Also the deviation of the two.
- ``iterations``: ``n_iter=3`` with the halo grown per iteration (what ``predict_blockwise``
  does) vs three single-iteration passes (the network work a pass-per-iteration design needs,
  before its extra temporary-zarr I/O).
- ``rss``: peak resident memory (``ru_maxrss``) of ``predict_blockwise`` (default block size,
  ``--memory-mb`` budget) on lazily generated dask volumes (uint16, generated block by block,
  never held whole) of 1x, 4x and 16x a base of 32x1024x1024 voxels (16x: 512x1024x1024,
  1 GiB of input, 2 GiB of float32 output), each in a fresh process; and for comparison
  in-memory ``predict`` of the 1x volume and of one block's region (one block's working set).
  Target: flat within 20%, and peak - model <= 2x (one block's working set).
- ``pyramid``: ``predict_blockwise`` with its multiscale pyramid (the default) vs ``pyramid=False``
  on a float32 volume read from zarr (``--pyramid-shape``, default the issue's 64x2048x2048,
  1 GiB), and the time to read the coarsest level's first plane back through ome-zarr's Reader
  (what napari-ome-zarr does). Target: pyramid overhead <= 15% of the blockwise time.
- ``workers``: the same blockwise run on a LocalCluster of 1 and 2 worker processes (one
  thread each; cluster start and model build excluded by a warm-up run).

The network is a tiny 3D U-Net (``unet_n_depth=1, unet_n_first=4``) with seeded weights, so the
figures measure the blockwise machinery rather than a network's arithmetic.

Usage: python benchmarks/bench_blockwise.py [--part throughput|iterations|rss|workers|pyramid] [--repeat 2]
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _timing import best_times  # noqa: E402  (benchmarks/, run as a script)

BASE = (32, 1024, 1024)


def make_model(memory_mb=512):
    from deepcontrast.models import Config, DeepContrast

    cfg = Config("ZYX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False, predict_memory_mb=memory_mb)
    model = DeepContrast(cfg, basedir=None)
    rng = np.random.default_rng(0)
    model.keras_model.set_weights([rng.normal(0, 1 / np.sqrt(max(1, np.prod(w.shape[:-1]))), w.shape).astype(np.float32)
                                   for w in model.keras_model.get_weights()])
    return model


def _block(block_info=None):
    """One chunk of the synthetic volume, seeded by its position (same voxels however it is read)."""
    loc = block_info[None]["array-location"]
    shape = block_info[None]["chunk-shape"]
    rng = np.random.default_rng([s.start if hasattr(s, "start") else s[0] for s in loc])
    return (100 + 50 * rng.random(shape, dtype=np.float32)).astype(np.uint16)


def lazy_volume(shape, chunks=(16, 512, 512)):
    import dask.array as da

    return da.map_blocks(_block, dtype=np.uint16, chunks=tuple(_chunks(n, c) for n, c in zip(shape, chunks)))


def _chunks(n, c):
    return tuple(min(c, n - i) for i in range(0, n, c))


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(args):
    """Run one memory measurement in this (fresh) process; print JSON."""
    model = make_model(args.memory_mb)
    model.tile_halo(0.01)
    model.predict(np.zeros((8, 16, 16), np.float32), "ZYX")  # trace the network once
    base = current_rss_mb()
    shape = tuple(s * f for s, f in zip(BASE, (args.scale, 1, 1)))
    t = time.perf_counter()
    if args.kind == "blockwise":
        with tempfile.TemporaryDirectory(dir=args.tmp) as d:
            out = model.predict_blockwise(lazy_volume(shape), "ZYX", os.path.join(d, "out.zarr"))
            info = {"block": list(out.chunks)}
    elif args.kind == "inmemory":
        model.predict(lazy_volume(shape).compute(), "ZYX")
        info = {}
    else:  # one block's region, in memory
        vol = lazy_volume(shape)
        from deepcontrast.data.volume import open_volume

        grid = model._block_grid(open_volume(vol), "ZYX", 1, None)
        read, _ = grid.region(tuple(min(1, c - 1) for c in grid.counts))
        region = vol[read].compute()
        model.predict(region, "ZYX")
        info = {"region": list(region.shape)}
    print(json.dumps(dict(kind=args.kind, scale=args.scale, voxels=int(np.prod(shape)), seconds=time.perf_counter() - t,
                          model_rss_mb=base, peak_rss_mb=rss_mb(), **info)))


def run_child(kind, scale, args):
    cmd = [sys.executable, __file__, "--child", kind, "--scale", str(scale), "--memory-mb", str(args.memory_mb),
           "--tmp", args.tmp]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def part_rss(args):
    res = {}
    for kind, scale in (("region", 1), ("inmemory", 1), ("blockwise", 1), ("blockwise", 4), ("blockwise", 16)):
        r = run_child(kind, scale, args)
        res[(kind, scale)] = r
        print(f"rss {kind:9s} {scale:2d}x {r['voxels'] / 1e6:7.0f} Mvox: peak {r['peak_rss_mb']:7.0f} MB "
              f"(model+runtime {r['model_rss_mb']:5.0f} MB), {r['seconds']:6.1f} s "
              f"{r.get('block', r.get('region', ''))}", flush=True)
    peaks = [res[("blockwise", s)]["peak_rss_mb"] for s in (1, 4, 16)]
    model = res[("region", 1)]["model_rss_mb"]
    block_ws = res[("region", 1)]["peak_rss_mb"] - model
    print(f"rss blockwise peak 16x / 1x = {peaks[2] / peaks[0]:.2f} (target <= 1.2); max/min over 1x,4x,16x = "
          f"{max(peaks) / min(peaks):.2f}")
    print(f"rss blockwise peak above model = {max(peaks) - model:.0f} MB vs one block's working set "
          f"{block_ws:.0f} MB: ratio {(max(peaks) - model) / block_ws:.2f} (target < 2)")
    print(f"rss in-memory predict 1x: {res[('inmemory', 1)]['peak_rss_mb']:.0f} MB")



def part_throughput(args):
    model = make_model(2048)
    vol = np.asarray(lazy_volume((32, 512, 512)).compute()).astype(np.float32)
    d = tempfile.mkdtemp(dir=args.tmp)
    try:
        fns = {"in-memory": lambda: model.predict(vol, "ZYX", n_tiles=(1, 2, 2)),
               "blockwise": lambda: model.predict_blockwise(vol, "ZYX", os.path.join(d, "out.zarr"), overwrite=True,
                                                            block_size=(32, 256, 256))[...]}
        t, outs = best_times(fns, args.repeat)
    finally:
        shutil.rmtree(d)
    ref = outs["in-memory"]
    dev = float(np.abs(outs["blockwise"] - ref).max() / (ref.max() - ref.min()))
    for k, v in t.items():
        print(f"throughput {k:10s} {vol.size / v / 1e6:6.2f} Mvox/s ({v:.2f} s)")
    print(f"throughput blockwise / in-memory = {t['in-memory'] / t['blockwise']:.2f} (target >= 0.9); "
          f"max deviation {dev:.2e} of the output range")


def part_iterations(args):
    model = make_model(2048)
    vol = lazy_volume((32, 512, 512)).compute()
    d = tempfile.mkdtemp(dir=args.tmp)
    try:
        fns = {"grown halo, n_iter=3": lambda: model.predict_blockwise(vol, "ZYX", os.path.join(d, "a.zarr"), n_iter=3,
                                                                       overwrite=True, block_size=(32, 256, 256)),
               "3 passes of n_iter=1": lambda: [model.predict_blockwise(vol, "ZYX", os.path.join(d, "b.zarr"),
                                                                        overwrite=True, block_size=(32, 256, 256))
                                                for _ in range(3)]}
        t, _ = best_times(fns, args.repeat)
    finally:
        shutil.rmtree(d)
    for k, v in t.items():
        print(f"iterations {k:22s} {v:.2f} s")
    print(f"iterations grown halo / 3 passes = {t['grown halo, n_iter=3'] / t['3 passes of n_iter=1']:.2f}")


def part_workers(args):
    from distributed import Client, LocalCluster

    model = make_model(2048)
    vol = lazy_volume((32, 512, 512)).compute()
    d = tempfile.mkdtemp(dir=args.tmp)
    t = {}
    try:
        for n in (1, 2):
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                run = lambda: model.predict_blockwise(vol, "ZYX", os.path.join(d, f"w{n}.zarr"), overwrite=True,  # noqa
                                                      block_size=(16, 256, 256), client=client)
                run()  # warm-up: workers import TensorFlow and build the model
                t0 = time.perf_counter()
                run()
                t[n] = time.perf_counter() - t0
                print(f"workers {n}: {vol.size / t[n] / 1e6:.2f} Mvox/s ({t[n]:.2f} s)", flush=True)
    finally:
        shutil.rmtree(d)
    print(f"workers speed-up 2 vs 1 = {t[1] / t[2]:.2f} on {os.cpu_count()} cores")


def part_pyramid(args):
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    model = make_model(2048)
    shape = tuple(int(v) for v in args.pyramid_shape.split(","))
    d = tempfile.mkdtemp(dir=args.tmp)
    try:
        src = zarr.open_array(os.path.join(d, "raw.zarr"), mode="w", shape=shape, dtype="float32",
                              chunks=(16, 512, 512))
        for z in range(0, shape[0], 16):  # written slab by slab, never whole in memory
            src[z:z + 16] = lazy_volume((min(16, shape[0] - z),) + shape[1:])[...].compute()
        from deepcontrast.models import _pyramid

        build, t_build = _pyramid.build, []

        def timed_build(*a, **kw):
            t0 = time.perf_counter()
            build(*a, **kw)
            t_build.append(time.perf_counter() - t0)

        _pyramid.build = timed_build
        model.tile_halo(0.01)  # measure the halo (TILE_TOLERANCE, n_iter=1) before timing
        t = {}
        for pyramid in (False, True):
            t0 = time.perf_counter()
            model.predict_blockwise(src, "ZYX", os.path.join(d, f"out{int(pyramid)}.zarr"), pyramid=pyramid)
            t[pyramid] = time.perf_counter() - t0
        _pyramid.build = build
        t0 = time.perf_counter()
        node = list(Reader(parse_url(os.path.join(d, "out1.zarr"), fmt=FormatV04()))())[0]
        coarsest = node.data[-1]
        np.asarray(coarsest[0])
        t_plane = time.perf_counter() - t0
    finally:
        shutil.rmtree(d)
    print(f"pyramid {shape}: blockwise {t[False]:.1f} s, with pyramid {t[True]:.1f} s; in the pyramid run the "
          f"pyramid took {t_build[-1]:.2f} s = {t_build[-1] / (t[True] - t_build[-1]):.1%} of its blockwise time "
          f"(target <= 15%); levels {[tuple(a.shape) for a in node.data]}")
    print(f"pyramid coarsest level's first plane read back through ome-zarr's Reader in {t_plane:.3f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("throughput", "iterations", "rss", "workers", "pyramid"), action="append")
    ap.add_argument("--pyramid-shape", default="64,2048,2048", help="Z,Y,X of the pyramid part's volume")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--memory-mb", type=float, default=512, help="predict_memory_mb for the rss part")
    ap.add_argument("--tmp", default=None, help="folder for the outputs (default: the system's temp folder)")
    ap.add_argument("--child", choices=("blockwise", "inmemory", "region"), help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.tmp = args.tmp or tempfile.gettempdir()
    if args.child:
        args.kind = args.child
        return child(args)
    for part in args.part or ("throughput", "iterations", "workers", "rss", "pyramid"):
        globals()[f"part_{part}"](args)


if __name__ == "__main__":
    main()
