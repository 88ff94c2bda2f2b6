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
  on a seeded float32 volume of tiled synthetic tissue read from zarr (``--pyramid-shape``, default
  the issue's 64x2048x2048, 1 GiB), each run in its own process (its own peak RSS), with a freshly
  initialized network of the demo's size (``--net demo``: 2D U-Net, 3 levels, 32 first filters;
  ``--net quick``: ``demo --quick``'s, 4x cheaper per voxel, so the pyramid weighs more); then a
  headless napari opens the output through napari-ome-zarr and reads the coarsest level's first
  plane. Targets: pyramid overhead <= 15% of the blockwise time, peak RSS within 20% of the run
  without pyramid, coarsest first plane in napari <= 1 s.
- ``workers``: the same blockwise run on a LocalCluster of 1 and 2 worker processes (one
  thread each; cluster start and model build excluded by a warm-up run).

The network of the other parts is a tiny 3D U-Net (``unet_n_depth=1, unet_n_first=4``) with seeded
weights, so the figures measure the blockwise machinery rather than a network's arithmetic.

Usage: python benchmarks/bench_blockwise.py [--part throughput|iterations|rss|workers|pyramid] [--repeat 2]
       python benchmarks/bench_blockwise.py --part pyramid [--pyramid-shape 64,2048,2048] [--net demo|quick]
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


#: the pyramid part's networks: the default demo's (a 2D U-Net, 3 levels, 32 first filters) and ``--quick``'s
PYRAMID_NETS = {"demo": dict(unet_n_depth=3, unet_n_first=32, unet_kern_size=5),
                "quick": dict(unet_n_depth=2, unet_n_first=8, unet_kern_size=5)}
#: voxel size of the pyramid part's volume (the demo's: Z stays whole in the first levels)
PYRAMID_VOXEL = (2.0, 0.5, 0.5)


def pyramid_model(net):
    """A freshly initialized (seeded) 2D network of the demo's size; only its cost matters here."""
    from deepcontrast.models import Config, DeepContrast

    cfg = Config("YX", train_tensorboard=False, **PYRAMID_NETS[net])
    model = DeepContrast(cfg, basedir=None)
    rng = np.random.default_rng(0)
    model.keras_model.set_weights([rng.normal(0, 1 / np.sqrt(max(1, np.prod(w.shape[:-1]))), w.shape).astype(np.float32)
                                   for w in model.keras_model.get_weights()])
    return model


def write_tissue_zarr(path, shape, tile=(64, 512, 512)):
    """A seeded float32 zarr volume of ``shape``: synthetic tissue tiles (each flipped by its position, so
    neighbours differ), written tile by tile (never whole in memory)."""
    import zarr

    from deepcontrast.data import synthetic_tissue

    tile = tuple(min(t, n) for t, n in zip(tile, shape))
    base = (synthetic_tissue(tile, voxel_size=PYRAMID_VOXEL, rng=0)[0] * 1000).astype(np.float32)
    arr = zarr.open_array(path, mode="w", shape=shape, dtype="float32", chunks=(16, 512, 512), zarr_format=2)
    for z in range(0, shape[0], tile[0]):
        for i, y in enumerate(range(0, shape[1], tile[1])):
            for j, x in enumerate(range(0, shape[2], tile[2])):
                region = tuple(slice(a, min(a + t, n)) for a, t, n in zip((z, y, x), tile, shape))
                flipped = base[:, ::(-1) ** i, ::(-1) ** j]
                arr[region] = flipped[tuple(slice(0, r.stop - r.start) for r in region)]
    return arr


def child_pyramid(args):
    """One blockwise run (with or without pyramid) in this fresh process; print JSON."""
    from deepcontrast.models import _pyramid

    model = pyramid_model(args.net)
    model.predict(np.zeros((2, 64, 64), np.float32), "ZYX")  # trace the network once
    base = current_rss_mb()
    build, t_build = _pyramid.iter_build, []

    def timed_build(*a, **kw):
        t0 = time.perf_counter()
        yield from build(*a, **kw)
        t_build.append(time.perf_counter() - t0)

    _pyramid.iter_build = timed_build
    pyramid = bool(args.pyramid)
    t0, c0 = time.perf_counter(), time.process_time()
    out = model.predict_blockwise(args.source, "ZYX", args.out, pyramid=pyramid, voxel_size=PYRAMID_VOXEL)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps(dict(pyramid=pyramid, seconds=seconds, cpu_seconds=cpu,
                          pyramid_seconds=sum(t_build) if pyramid else 0.0, model_rss_mb=base, peak_rss_mb=rss_mb(),
                          block=list(out.chunks))))


def _without_opengl():
    """Headless (QT_QPA_PLATFORM=offscreen) there is no OpenGL context: give napari's vispy layers the texture
    limits they query from it (as tests/test_napari.py does), so layers can be added; nothing is drawn."""
    import importlib

    from napari._vispy.utils import gl

    try:
        gl.get_gl_extensions()
        return
    except Exception:
        pass
    for name in ("napari._vispy.layers.image", "napari._vispy.layers.base", "napari._vispy.layers.labels",
                 "napari._vispy.canvas"):
        mod = importlib.import_module(name)
        mod.get_max_texture_sizes = lambda: (4096, 2048)
        if hasattr(mod, "get_gl_extensions"):
            mod.get_gl_extensions = lambda: ""


def child_napari(args):
    """Open the output in a headless napari viewer through napari-ome-zarr, read the coarsest level's first
    plane; print JSON with the times."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    t0 = time.perf_counter()
    import napari

    viewer = napari.Viewer(show=False)
    _without_opengl()
    t_viewer = time.perf_counter() - t0
    times = []
    for _ in range(2):  # the first open in a session also imports the reader plugin (and dask) once
        t0 = time.perf_counter()
        (layer,) = viewer.open(args.out, plugin="napari-ome-zarr")
        t_open = time.perf_counter() - t0
        data = layer.data if layer.multiscale else [layer.data]
        plane = np.asarray(data[-1][0])
        times.append((t_open, time.perf_counter() - t0))
        ok = bool(np.isfinite(plane).all())
        levels = [list(a.shape) for a in data]
        viewer.layers.remove(layer)
    viewer.close()
    print(json.dumps(dict(viewer_seconds=t_viewer, open_seconds=[t for t, _ in times],
                          plane_seconds=[t for _, t in times], finite=ok, plane=list(plane.shape), levels=levels,
                          multiscale=bool(layer.multiscale))))


def _child(kind, args, **kw):
    cmd = [sys.executable, __file__, "--child", kind, "--tmp", args.tmp]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _verdict(ok):
    return "PASS" if ok else "FAIL"


def part_pyramid(args):
    shape = tuple(int(v) for v in args.pyramid_shape.split(","))
    d = tempfile.mkdtemp(dir=args.tmp)
    try:
        t0 = time.perf_counter()
        source = os.path.join(d, "raw.zarr")
        write_tissue_zarr(source, shape)
        print(f"pyramid: {shape} float32 ({np.prod(shape) * 4 / 2**30:.2f} GiB) written to zarr in "
              f"{time.perf_counter() - t0:.0f} s; network '{args.net}' {PYRAMID_NETS[args.net]} (2D, freshly "
              f"initialized, seeded), voxel {PYRAMID_VOXEL}", flush=True)
        runs = {0: [], 1: []}
        for _ in range(args.pyramid_repeat):
            for pyramid in (0, 1):  # each in its own process (its own peak RSS), round robin
                out = os.path.join(d, f"out{pyramid}.ome.zarr")
                if os.path.exists(out):
                    shutil.rmtree(out)
                r = _child("pyramid", args, source=source, out=out, pyramid=pyramid, net=args.net)
                runs[pyramid].append(r)
                print(f"pyramid={bool(pyramid)!s:5s}: {r['seconds']:7.1f} s (pyramid {r['pyramid_seconds']:.1f} s), "
                      f"CPU {r['cpu_seconds']:.0f} s, "
                      f"peak RSS {r['peak_rss_mb']:6.0f} MB (model+runtime {r['model_rss_mb']:.0f} MB), "
                      f"block {r['block']}", flush=True)
                if not pyramid:
                    shutil.rmtree(out)
        nap = _child("napari", args, out=os.path.join(d, "out1.ome.zarr"))
    finally:
        shutil.rmtree(d)
    off, on = (min(runs[p], key=lambda r: r["seconds"]) for p in (0, 1))  # best of --pyramid-repeat
    share = on["pyramid_seconds"] / (on["seconds"] - on["pyramid_seconds"])
    diff = (on["seconds"] - off["seconds"]) / off["seconds"]
    cpu = {p: min(r["cpu_seconds"] for r in runs[p]) for p in (0, 1)}
    cpu_diff = cpu[1] / cpu[0] - 1
    peak = {p: max(r["peak_rss_mb"] for r in runs[p]) for p in (0, 1)}
    rss = peak[1] / peak[0] - 1
    print(f"pyramid overhead, in the pyramid run: {on['pyramid_seconds']:.1f} s = {share:.1%} of its blockwise "
          f"time (target <= 15%): {_verdict(share <= 0.15)}")
    print(f"pyramid overhead, run with vs without (best of {args.pyramid_repeat}): {on['seconds']:.1f} s vs "
          f"{off['seconds']:.1f} s = {diff:+.1%} (target <= 15%): {_verdict(diff <= 0.15)}")
    print(f"pyramid overhead, CPU time of the run with vs without (all threads, less sensitive to other load on a "
          f"shared machine; least of {args.pyramid_repeat}): {cpu[1]:.0f} s vs {cpu[0]:.0f} s = {cpu_diff:+.1%} "
          f"(target <= 15%): {_verdict(cpu_diff <= 0.15)}")
    print(f"pyramid peak RSS with vs without: {peak[1]:.0f} MB vs {peak[0]:.0f} MB = {rss:+.1%} "
          f"(target within 20%): {_verdict(abs(rss) <= 0.20)}")
    (cold, warm), (cold_open, warm_open) = nap["plane_seconds"], nap["open_seconds"]
    print(f"napari (headless, napari-ome-zarr, output in the OS page cache): levels {nap['levels']}, multiscale "
          f"{nap['multiscale']}; viewer start {nap['viewer_seconds']:.2f} s")
    print(f"napari open + coarsest level's first plane {nap['plane']}, first open of the session (imports the "
          f"reader plugin): {cold:.3f} s (open {cold_open:.3f} s) (target <= 1 s): {_verdict(cold <= 1 and nap['finite'])}")
    print(f"napari open + coarsest level's first plane {nap['plane']}, plugin loaded: {warm:.3f} s "
          f"(open {warm_open:.3f} s) (target <= 1 s): {_verdict(warm <= 1 and nap['finite'])}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("throughput", "iterations", "rss", "workers", "pyramid"), action="append")
    ap.add_argument("--pyramid-shape", default="64,2048,2048", help="Z,Y,X of the pyramid part's volume")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--memory-mb", type=float, default=512, help="predict_memory_mb for the rss part")
    ap.add_argument("--tmp", default=None, help="folder for the outputs (default: the system's temp folder)")
    ap.add_argument("--pyramid-repeat", type=int, default=1,
                    help="pyramid part: runs with and without pyramid, round robin (best time, highest peak RSS)")
    ap.add_argument("--net", choices=tuple(PYRAMID_NETS), default="demo",
                    help="the pyramid part's network: the default demo's or --quick's (both freshly initialized)")
    ap.add_argument("--child", choices=("blockwise", "inmemory", "region", "pyramid", "napari"), help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--pyramid", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.tmp = args.tmp or tempfile.gettempdir()
    if args.child in ("pyramid", "napari"):
        return globals()[f"child_{args.child}"](args)
    if args.child:
        args.kind = args.child
        return child(args)
    for part in args.part or ("throughput", "iterations", "workers", "rss", "pyramid"):
        globals()[f"part_{part}"](args)


if __name__ == "__main__":
    main()
