"""Curved samples: depth below the real surface instead of slice depths, measured against targets.

On ``synthetic_spheroid`` (truth known; rendered with attenuation 60 um and blur_rate 0.05,
away from the defaults, at 50 photons):

(a) ``surface_depth`` from the data alone: median absolute error against the true depth inside
    the tissue, in Z voxels (target <= 2), on every sample (``--samples``, default seeds 0-5);
(b) calibration with the true depth map recovers attenuation within 15% and blur_rate within
    one grid step (0.01) on every sample (attenuation shown +- its reported standard error); with a flat surface (slice depths from the first
    slice) it does not; shown too: the map found from the data alone (``surface='auto'``), and
    the attenuation the map's fit gives with the sample's own structure profile divided out
    (a diagnostic that uses the truth: a random sample's structure is not the same at every
    depth, and one stack cannot tell that from attenuation);
(c) training with per-voxel depth (``surface='auto'``, the map found from the data) against
    training with a flat surface (``surface='first'``), same recipe otherwise: the README's 3D
    route (``degradation='auto'``, extra depth 10-40 um, 4 degraded copies, 8x64x64 patches,
    128 per copy, 15 x 30 steps of batch 4) or its per-plane route (``--route per-plane``; its
    planes of empty medium and pairs of a few stray photons give no pairs, see ``per_slice``
    and ``create_patches``);
    PSNR of iteration 1 against the truth over the deepest third of the tissue by true depth
    (the third of the tissue's voxels that lie deepest), difference >= 1 dB, averaged over
    ``--seeds`` (sample and training seed); a third training on the true map (``depth_map=``)
    is shown as a diagnostic (``--no-true-map`` skips it), and so is what ideal networks trained
    on each calibration would reach (noise-free: each calibration's blur increment for a push of
    25 or 40 um, from the depth it was told, undone exactly).

(d) On a real light-sheet stack of a Tribolium embryo (no truth), given as ``--embryo PATH``:
    calibration with ``surface='auto'`` finds depth-dependent loss (an attenuation length
    fitted, not defaulted), and iteration 1 of a 3D network trained with ``surface='auto'``
    raises the RMS contrast (above the calibrated background) of the deepest third of the
    tissue (by the map found in the stack) by >= 1.1x while that region's mean above the
    background stays within 3%. The stack ships inside a wheel of the napari plugin
    napari-pyclesperanto-assistant (BSD-3); get it with::

        pip download napari-pyclesperanto-assistant==0.10.0 --no-deps -d /tmp/wheel
        cd /tmp/wheel && unzip -o napari_pyclesperanto_assistant-0.10.0-py3-none-any.whl \\
            'napari_pyclesperanto_assistant/data/Lund_000500_resampled-cropped.tif'

    (100 x 256 x 256, 1 um voxels). Without ``--embryo`` part (d) is skipped.

Prints a table: target, measured value, pass/fail. Seeded (``--seeds``; Keras and numpy).
``--quick`` runs a smaller spheroid and short trainings in a few minutes (its figures are not
the targets' measurements). ``--figure PNG`` saves an XZ section of the spheroid: true depth,
depth found from the data, raw, and iteration 1 of the two trainings of the first seed.

Usage::

    nice -n 19 python benchmarks/bench_curved.py [--quick] [--seeds 0,1,2] [--route 3d|per-plane]
        [--embryo Lund_000500_resampled-cropped.tif] [--parts a,b,c,d] [--figure docs/curved.png]
        [--json out.json]
"""
import argparse
import json
import logging
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _routes import train_readme_route  # noqa: E402  (benchmarks/, run as a script)

from deepcontrast import DeepTissueDegradation  # noqa: E402
from deepcontrast.calibration import calibrate  # noqa: E402
from deepcontrast.data import synthetic_spheroid  # noqa: E402
from deepcontrast.depth import AUTO_SURFACES, surface_depth  # noqa: E402
from deepcontrast.metrics import psnr  # noqa: E402

VS = (2.0, 0.5, 0.5)
#: the spheroid's forward model, away from the defaults (150 um, 0.03)
TRUTH = DeepTissueDegradation(photons=50, attenuation_length=60.0, blur_rate=0.05)
BLUR_STEP = 0.01  # the calibration's blur_rate grid step
EMBRYO_VS = (1.0, 1.0, 1.0)

rows = []  # (part, target, measured, pass or None)


def row(part, target, measured, ok):
    rows.append((part, target, measured, None if ok is None else bool(ok)))
    print(f"  [{part}] {target}: {measured} -> {'-' if ok is None else ('PASS' if ok else 'FAIL')}", flush=True)


def deepest_third(depth, tissue):
    """The third of the tissue's voxels that lie deepest."""
    return tissue & (depth >= np.quantile(depth[tissue], 2 / 3))


# --------------------------------------------------------------------------- (a), (b)
def part_a(samples):
    errs, meds = [], []
    for observed, _, depth in samples:
        found = surface_depth(observed, "ZYX", voxel_size=VS, surface="first")
        inside = depth > 0
        err = np.abs(found[inside] - depth[inside]) / VS[0]
        errs.append(err)
        meds.append(float(np.median(err)))
    row("a", "surface_depth from the data alone: median |error| inside the tissue <= 2 Z voxels, every sample",
        f"{max(meds):.2f} voxels at most (samples: {', '.join(f'{m:.2f}' for m in meds)}; 90th percentile "
        f"{max(np.quantile(e, 0.9) for e in errs):.2f})", max(meds) <= 2)


def structure_corrected_attenuation(observed, clean, depth, deg):
    """Attenuation fitted as the calibration does (tissue voxels per depth bin, the light lost to the
    medium divided out with ``deg``, bins weighed by their voxels), with the clean structure's own mean
    per depth bin divided out too: what the calibration would find if the sample's structure were the
    same at every depth (uses the truth)."""
    from deepcontrast.calibration.depth import fit_attenuation
    from deepcontrast.calibration.depthmap import _profile, tissue_mask, voxel_sums

    model = deg.replace(attenuation_length=None, photons=None, read_noise=0.0, background=0.0)
    z, mean, n = _profile(voxel_sums(observed, depth, tissue_mask(observed, depth, VS), VS, deg.background, model))
    inside = depth > 0
    b = np.round(depth[inside] / VS[0]).astype(int)
    cnt = np.maximum(np.bincount(b), 1)
    zc, cm = np.bincount(b, depth[inside]) / cnt, np.bincount(b, clean[inside]) / cnt
    keep = np.bincount(b) > 0
    return fit_attenuation([(z, mean / np.interp(z, zc[keep], cm[keep]))], None, weights=[n])["value"]


def part_b(samples):
    def within(deg):
        att = deg.attenuation_length is not None and abs(deg.attenuation_length / TRUTH.attenuation_length - 1) <= 0.15
        return att, abs(deg.blur_rate - TRUTH.blur_rate) <= BLUR_STEP + 1e-9

    def fmt(degs):
        att = ", ".join("None" if d.attenuation_length is None else
                        f"{d.attenuation_length:.0f}" + (f" +- {ses[id(d)]:.0f}" if ses.get(id(d)) else "") for d in degs)
        return f"attenuation {att} um (true 60); blur_rate {', '.join(f'{d.blur_rate:.2f}' for d in degs)} (true 0.05)"

    res = {name: [] for name in ("map", "flat", "auto")}
    ses = {}  # id(deg) -> the reported standard error of its attenuation length (um)
    corrected = []
    for observed, clean, depth in samples:
        for name, kw in (("map", dict(depth=depth)), ("flat", dict(surface="first")), ("auto", dict(surface="auto"))):
            deg, report = calibrate(observed, "ZYX", voxel_size=VS, **kw)
            res[name].append(deg)
            ses[id(deg)] = report.parameters["attenuation_length"].get("se")
        corrected.append(structure_corrected_attenuation(observed, clean, depth, res["map"][-1]))
    n = len(samples)
    ok = [within(d) for d in res["map"]]
    row("b", "calibration with the true depth map: attenuation within 15% and blur_rate within 0.01, every sample",
        f"{fmt(res['map'])}: attenuation {sum(a for a, _ in ok)}/{n}, blur {sum(b for _, b in ok)}/{n}",
        all(a and b for a, b in ok))
    ok = [within(d) for d in res["flat"]]
    row("b", "calibration with a flat surface does NOT recover them (attenuation or blur off), every sample",
        f"{fmt(res['flat'])}", not any(a and b for a, b in ok))
    ok = [within(d) for d in res["auto"]]
    row("b", "calibration with surface='auto' (map from the data alone; no target)",
        f"{fmt(res['auto'])}: attenuation {sum(a for a, _ in ok)}/{n}, blur {sum(b for _, b in ok)}/{n}", None)
    row("b", "diagnostic: the map's attenuation fit with the sample's own structure profile divided out (uses the "
        "truth; no target)", f"{', '.join(f'{c:.0f}' for c in corrected)} um", None)


# --------------------------------------------------------------------------- training
def train(stack, surface, route, seed, budget, basedir, voxel_size, depth_map=None):
    """A model trained the README's way (degradation='auto') on one stack, with the given surface (or map)."""
    tag = f"{route}_{surface}{'_map' if depth_map is not None else ''}_{seed}"
    epochs, steps = budget
    model, settings, _, seconds = train_readme_route(route, stack, "ZYX", voxel_size=voxel_size, surface=surface,
                                                     epochs=epochs, steps=steps, seed=seed, basedir=basedir, name=tag,
                                                     depth_map=depth_map)
    return model, settings, seconds


def part_c(args, basedir, shape):
    gains, per_seed, figure = [], [], None
    for seed in args.seeds:
        observed, clean, depth = synthetic_spheroid(shape, voxel_size=VS, degradation=TRUTH, rng=seed)
        tissue = depth > 0
        region = deepest_third(depth, tissue)
        other = {"shallowest third": tissue & (depth <= np.quantile(depth[tissue], 1 / 3)), "whole tissue": tissue}
        res, degs = {"raw": psnr(observed[region], clean[region])}, {}
        for surface in ("auto", "first", "true"):
            if surface == "true" and args.no_true_map:
                continue
            model, settings, train_s = train(observed, "first" if surface == "true" else surface, args.route, seed,
                                             args.budget, basedir, VS, depth if surface == "true" else None)
            its = model.predict_iterative(observed, "ZYX", 2)
            deg = (settings.get("degradation") or {})
            degs[surface] = deg
            res[surface] = [psnr(x[region], clean[region]) for x in its]
            res[f"{surface}_other"] = {name: (psnr(observed[m], clean[m]), psnr(its[0][m], clean[m]))
                                       for name, m in other.items()}
            print(f"    seed {seed}, surface {surface!r}: {model.precision}, training {train_s:.0f} s; calibrated "
                  f"attenuation {deg.get('attenuation_length'):.1f}, blur_rate {deg.get('blur_rate')}; deepest third "
                  f"PSNR raw {res['raw']:.2f}, iterations 1/2 {res[surface][0]:.2f}/{res[surface][1]:.2f} dB",
                  flush=True)
            if seed == args.seeds[0] and surface != "true":
                figure = (figure or {}) | {surface: its[0]}
        gains.append(res["auto"][0] - res["first"][0])
        res["ideal"] = {surface: ideal_iteration(clean, depth, observed, surface, degs[surface], region)
                        for surface in ("auto", "first")}
        per_seed.append(res)
    gain = float(np.mean(gains))
    row("c", f"training with the map ('auto') beats a flat surface ('first'), {args.route} route: deepest-third "
        "(true depth) PSNR of iteration 1, >= 1 dB",
        f"{gain:+.2f} dB (seeds {', '.join(f'{g:+.2f}' for g in gains)}; raw "
        f"{np.mean([r['raw'] for r in per_seed]):.2f}, map {np.mean([r['auto'][0] for r in per_seed]):.2f}, flat "
        f"{np.mean([r['first'][0] for r in per_seed]):.2f} dB; iteration 2: map "
        f"{np.mean([r['auto'][1] for r in per_seed]):.2f}, flat {np.mean([r['first'][1] for r in per_seed]):.2f})",
        gain >= 1.0)
    for name in ("shallowest third", "whole tissue"):
        raw, map_, flat = (np.mean([r[k][name][i] for r in per_seed]) for k, i in
                           (("auto_other", 0), ("auto_other", 1), ("first_other", 1)))
        row("c", f"diagnostic: the same trainings, {name} (true depth), PSNR of iteration 1, map vs flat (no target)",
            f"{map_ - flat:+.2f} dB (raw {raw:.2f}, map {map_:.2f}, flat {flat:.2f})", None)
    for D in IDEAL_PUSHES:
        ideal = {k: np.mean([r["ideal"][k][D][1] for r in per_seed]) for k in ("auto", "first")}
        restored = {k: np.mean([r["ideal"][k][D][0] for r in per_seed]) for k in ("auto", "first")}
        row("c", f"diagnostic: ideal networks (noise-free, each calibration's push of {D} um undone exactly, "
            "blur only), deepest-third PSNR map vs flat (no target)",
            f"{ideal['auto'] - ideal['first']:+.2f} dB (map {ideal['auto']:.2f}, restores {restored['auto']:.0f} um; "
            f"flat {ideal['first']:.2f}, restores {restored['first']:.0f} um; noise-free raw "
            f"{np.mean([r['ideal']['auto'][0][1] for r in per_seed]):.2f})", None)
    if not args.no_true_map:
        true_gain = [r["true"][0] - r["first"][0] for r in per_seed]
        row("c", "diagnostic: training with the TRUE depth map (depth_map=) vs flat, same recipe (no target)",
            f"{np.mean(true_gain):+.2f} dB (map {np.mean([r['true'][0] for r in per_seed]):.2f}, iteration 2 "
            f"{np.mean([r['true'][1] for r in per_seed]):.2f})", None)
    return figure


#: pushes (um) of the ideal-network diagnostic of (c): the middle and the top of the extra depth 10-40 um
IDEAL_PUSHES = (25, 40)


def ideal_iteration(clean, depth, observed, surface, deg, region):
    """What an ideal network trained with ``surface`` would restore: {push: (median um restored, PSNR)}.

    An ideal network undoes exactly the blur its training pairs added: the calibrated model's
    ballistic-blur increment from the depth it was told (the map found in the data, or the slice
    depths) to that depth plus the push. Taken off the blur variance the truth's model put at
    each voxel's true depth, it leaves an effective depth; the noise-free render of the truth
    at that depth (no attenuation, no noise, the truth's blur and halo) is what the ideal
    network's iteration 1 looks like. ``0`` holds the noise-free render at the true depth.
    """
    told = (surface_depth(observed, "ZYX", voxel_size=VS, surface="first") if surface == "auto" else
            np.broadcast_to((np.arange(clean.shape[0]) * VS[0])[:, None, None], clean.shape))
    quiet = TRUTH.replace(photons=None, attenuation_length=None)
    out = {0: (0.0, psnr(quiet.render(clean, "ZYX", depth=depth, voxel_size=VS)[region], clean[region]))}
    b, bt = float(deg.get("blur_rate") or 0.0), TRUTH.blur_rate
    for D in IDEAL_PUSHES:
        left = (bt * depth) ** 2 - b ** 2 * ((told + D) ** 2 - told ** 2)
        eff = np.where(depth > 0, np.sqrt(np.maximum(left, 0)) / bt, 0).astype(np.float32)
        img = quiet.render(clean, "ZYX", depth=eff, voxel_size=VS)
        out[D] = (float(np.median((depth - eff)[region])), psnr(img[region], clean[region]))
    return out


# --------------------------------------------------------------------------- (d)
def part_d(path, args, basedir):
    import tifffile

    from deepcontrast.calibration.depthmap import tissue_mask

    stack = tifffile.imread(path).astype(np.float32)
    if args.quick:
        stack = stack[:, 64:192, 64:192]
    print(f"    embryo {stack.shape}, {EMBRYO_VS} um voxels", flush=True)
    surface = args.embryo_surface
    deg, report = DeepTissueDegradation.calibrate(stack, "ZYX", voxel_size=EMBRYO_VS, surface=surface)
    p = report.parameters["attenuation_length"]
    att = "None" if deg.attenuation_length is None else f"{deg.attenuation_length:.0f} um"
    row("d", f"embryo, calibration with surface={surface!r} finds depth-dependent loss (attenuation length fitted)",
        f"attenuation {att} ({'fitted' if p.get('estimated') else 'default: ' + str(p.get('reason', ''))}); "
        f"blur_rate {deg.blur_rate:g}, scattering_length {deg.scattering_length}", bool(p.get("estimated")))
    dmap = surface_depth(stack, "ZYX", voxel_size=EMBRYO_VS, surface=AUTO_SURFACES[surface])
    region = deepest_third(dmap, tissue_mask(stack, dmap, EMBRYO_VS))
    model, settings, train_s = train(stack, surface, "3d", args.seeds[0], args.budget, basedir, EMBRYO_VS)
    bg = float(model.background)
    it1 = model.predict_iterative(stack, "ZYX", 1)[0]
    raw_v, it_v = stack[region] - bg, it1[region] - bg
    gain = (it_v.std() / it_v.mean()) / (raw_v.std() / raw_v.mean())
    kept = it_v.mean() / raw_v.mean()
    print(f"    embryo training {train_s:.0f} s ({model.precision}); background {bg:g}; deep region "
          f"{region.sum()} voxels, depth >= {dmap[region].min():.0f} um", flush=True)
    row("d", f"embryo ({surface!r}), iteration 1: deepest-third RMS contrast >= 1.1x the raw's, mean within 3%",
        f"contrast {gain:.3f}x, mean {kept:.4f}x", gain >= 1.1 and abs(kept - 1) <= 0.03)


# --------------------------------------------------------------------------- figure
def save_figure(path, observed, depth, found, restored):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = observed.shape[1] // 2
    lim = np.percentile(observed[:, y], [0.5, 99.8])
    aspect = VS[0] / VS[2]
    panels = [("true depth (um)", depth[:, y], "viridis", (0, depth.max())),
              ("depth found in the data (um)", found[:, y], "viridis", (0, depth.max())),
              ("raw", observed[:, y], "gray", None)]
    names = {"auto": "iteration 1, trained with the map", "first": "iteration 1, trained flat"}
    for k in ("auto", "first"):
        if restored and k in restored:
            panels.append((names[k], restored[k][:, y], "gray", None))
    ncol = 3
    nrow = -(-len(panels) // ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.1 * ncol, 2.9 * nrow), squeeze=False)
    for ax in axs.ravel():
        ax.axis("off")
    for ax, (title, img, cmap, clim) in zip(axs.ravel(), panels):
        if clim is None:
            clim = lim if title == "raw" else np.percentile(img, [0.5, 99.8])
        im = ax.imshow(img, cmap=cmap, vmin=clim[0], vmax=clim[1], aspect=aspect, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        if cmap == "viridis":
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    fig.suptitle("synthetic spheroid, XZ section (light from the top)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"figure: {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller spheroid, short trainings (not the targets' run)")
    ap.add_argument("--seeds", default="0", help="seeds of (c): sample and training, comma-separated, e.g. 0,1,2")
    ap.add_argument("--samples", default=None, help="seeds of the samples of (a) and (b) (default 0-5; quick 0,1)")
    ap.add_argument("--route", choices=("3d", "per-plane"), default="3d")
    ap.add_argument("--embryo", default=None, help="path of Lund_000500_resampled-cropped.tif (part d)")
    ap.add_argument("--embryo-surface", choices=tuple(AUTO_SURFACES), default="auto",
                    help="which end of Z the light enters the embryo at (the target is for 'auto')")
    ap.add_argument("--parts", default="a,b,c,d",
                    help="parts to run, comma-separated, e.g. --parts b (c trains networks and takes long)")
    ap.add_argument("--no-true-map", action="store_true", help="(c) without the diagnostic training on the true map")
    ap.add_argument("--figure", default=None, help="save the XZ figure of the spheroid here (PNG)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs of 30 steps of each training (default 15, the README's; a diagnostic of training length)")
    ap.add_argument("--photons", type=float, default=50.0,
                    help="photons of the spheroid's render (default 50, the targets'; a diagnostic of what noise costs)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    global TRUTH
    TRUTH = TRUTH.replace(photons=args.photons)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.samples = [int(s) for s in (args.samples or ("0,1" if args.quick else "0,1,2,3,4,5")).split(",")]
    args.budget = (6, 10) if args.quick else (args.epochs or 15, 30)
    parts = set(args.parts.split(","))
    logging.basicConfig(level=logging.WARNING)
    shape = (32, 128, 128) if args.quick else (48, 192, 192)
    t0 = time.time()
    print(f"spheroid {shape}, voxel {VS} um, {TRUTH.photons:g} photons; samples {args.samples}, training seeds {args.seeds}", flush=True)
    samples = [synthetic_spheroid(shape, voxel_size=VS, degradation=TRUTH, rng=s) for s in args.samples]
    restored = None
    with tempfile.TemporaryDirectory() as basedir:
        if "a" in parts:
            part_a(samples)
        if "b" in parts:
            part_b(samples)
        if "c" in parts or args.figure:
            restored = part_c(args, basedir, shape)
        if "d" in parts:
            if args.embryo:
                part_d(args.embryo, args, basedir)
            else:
                print("  [d] skipped: give --embryo PATH (see the module docstring for how to get it)")
    if args.figure:
        observed, _, depth = synthetic_spheroid(shape, voxel_size=VS, degradation=TRUTH, rng=args.seeds[0])
        found = surface_depth(observed, "ZYX", voxel_size=VS, surface="first")
        save_figure(args.figure, observed, depth, found, restored)
    print(f"\n| part | target | measured | result |\n| --- | --- | --- | --- |")
    for part, target, measured, ok in rows:
        print(f"| {part} | {target} | {measured} | {'-' if ok is None else ('pass' if ok else 'FAIL')} |")
    print(f"\n{'quick run, ' if args.quick else ''}{(time.time() - t0) / 60:.1f} min")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
