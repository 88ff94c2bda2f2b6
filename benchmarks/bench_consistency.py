"""Does the data-consistency check tell how far to iterate? Measured with known answers (issue 20).

Two stacks with clean truth: the built-in sample (``synthetic_tissue``, 50 photons, as the demo
draws it) and the dim render of ``bench_fidelity.py`` (25 photons). On each, per-plane 2D
networks (the demo's route and settings) are trained on a *fixed* extra depth d0 of 10, 20 and
30 um, so the depth an iteration should restore is known, and the targets are:

(a) median restored depth of iteration 1 over the deepest third within +-50% of d0, rising with
    every iteration (1 < 2 < 3); and, with the truth, what each iteration really restored: the
    depth ``D`` at which the clean truth rendered without noise at ``z - D`` looks most like the
    iterate (per deep plane, gain and offset fitted, 2.5 um grid and a parabola), which the check
    (from the raw alone) should match for iteration 1 within max(2.5 um, 25%) (printed for all);
(b) chi2 of iteration 1 in [0.7, 2.0] on every plane of the deepest third, with the true
    degradation and with ``degradation='auto'``;
(c) the clean truth taken as the restoration: restored depth within 25% of each deep plane's own
    depth, chi2 in [0.7, 1.5];
(d) invented structure planted in iteration 1 (d0 = 20 um net) in deep planes: 20 bright disks
    (radius 3 px, at the plane's 99.9th percentile) found by the local mean residual (7x7 px) with
    AUC >= 0.95, 20 thin bright lines (1 px wide) with AUC >= 0.9;
(e) ``predict_adaptive`` (max_iter 3): whole-volume PSNR vs truth >= the best single iteration's,
    detail retention of the shallow third (vs the raw) >= 0.97, deepest-third PSNR within 0.2 dB
    of the best single iteration there;
(f) ``check_consistency`` of one iterate costs <= 0.5x one prediction pass of the same stack
    (both timed round-robin in the same run, best of 2; the check of all three iterates is
    printed too).

A table with each target, the measured value and pass/fail is printed; ``--figure`` saves the
restored depth and chi2 per iteration of the sample's d0 = 20 um network (the README figure),
``--json`` every number.

Run: ``nice -n 19 python benchmarks/bench_consistency.py`` (six trainings of the demo's length:
about 30-40 minutes on 2 shared cores); ``--quick`` for a small run (a check, not the figures).
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import best_times  # noqa: E402
from bench_fidelity import VS, dim_render  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from deepcontrast import DeepTissueDegradation  # noqa: E402
from deepcontrast.consistency import check_consistency  # noqa: E402
from deepcontrast.data import synthetic_tissue  # noqa: E402
from deepcontrast.metrics import detail_retention, psnr  # noqa: E402

D0S = (10.0, 20.0, 30.0)
#: the network whose iterate receives planted structure, whose cost is timed and whose report is the figure
REF_D0 = 20.0
N_PLANTED = 20
WINDOW = 7  # px: the local mean of the residual map


# -- data and networks ------------------------------------------------------------------------
def samples(shape, seed):
    """{name: (observed, clean, true degradation)}: the built-in sample and the dim render."""
    deg = DeepTissueDegradation(photons=50.0)
    observed, clean = synthetic_tissue(shape, voxel_size=VS, degradation=deg, rng=seed)
    dim_photons = 25.0
    dim_obs, dim_clean, _ = dim_render(shape, dim_photons, seed)
    return {"sample": (observed, clean, deg), "dim": (dim_obs, dim_clean, DeepTissueDegradation(photons=dim_photons))}


def train_fixed_depth(observed, deg, d0, s, tmp, name, seed):
    """A per-plane 2D network (the demo's route) trained to undo exactly d0 um of the true forward model."""
    import keras

    from deepcontrast.demo import steps

    keras.utils.disable_interactive_logging()
    keras.utils.set_random_seed(seed)
    from deepcontrast.models import DeepContrast

    s = dict(s, extra_depth=(d0, d0))
    sample = SimpleNamespace(image=observed, axes="ZYX", degradation=deg, voxel_size=VS, surface="first",
                             depth=0.0, microscope="auto")
    folder = Path(tmp) / name
    if (folder / "model" / "weights_best.h5").exists():  # --models: trained by an earlier run of these settings
        return DeepContrast(None, "model", basedir=str(folder)), 0.0
    folder.mkdir(parents=True, exist_ok=True)
    data = steps.make_training_data(s, sample, folder, seed)
    t = time.perf_counter()
    model, _ = steps.train(s, data, folder, "model", seed=seed)
    return model, time.perf_counter() - t


# -- measures -----------------------------------------------------------------------------------
TRUTH_GRID = 2.5  # um: spacing of the depths the truth is rendered at


def truth_restored_depth(clean, iterates, planes, depth_max=60.0):
    """Per iterate, the median over ``planes`` of the depth D (um) at which the clean truth rendered
    (noise-free, the true model) at ``z - D`` looks most like the iterate: residual of a per-plane
    gain + offset fit, least over a grid of D with a parabola through the best point and its neighbours."""
    fwd = DeepTissueDegradation(photons=None)
    z = np.arange(len(clean)) * VS[0]
    ds = np.arange(0.0, depth_max + 1e-9, TRUTH_GRID)
    err = np.zeros((len(iterates), len(ds), len(planes)))
    for i, d in enumerate(ds):
        dmap = np.broadcast_to(np.maximum(z - d, 0.0)[:, None, None], clean.shape).astype(np.float32)
        r = fwd.render(clean, "ZYX", depth=dmap, voxel_size=VS)[planes].reshape(len(planes), -1).astype(np.float64)
        r -= r.mean(axis=1, keepdims=True)
        for k, it in enumerate(iterates):
            x = it[planes].reshape(len(planes), -1).astype(np.float64)
            x = x - x.mean(axis=1, keepdims=True)
            g = np.sum(r * x, axis=1) / np.sum(r * r, axis=1)
            err[k, i] = np.mean((x - g[:, None] * r) ** 2, axis=1) / np.var(x, axis=1)
    best = np.argmin(err, axis=1)  # (n_iter, planes)
    out = []
    for k in range(len(iterates)):
        b, cols = best[k], np.arange(len(planes))
        lo, hi = np.maximum(b - 1, 0), np.minimum(b + 1, len(ds) - 1)
        cl, c0, ch = err[k, lo, cols], err[k, b, cols], err[k, hi, cols]
        den = cl - 2 * c0 + ch
        ok = (lo < b) & (b < hi) & (den > 0)
        shift = np.clip(np.where(ok, 0.5 * (cl - ch) / np.where(ok, den, 1.0), 0.0), -0.5, 0.5)
        out.append(float(np.median(ds[b] + shift * TRUTH_GRID)))
    return out

def thirds(n):
    """Plane indices of the shallow and the deepest third."""
    return np.arange(n // 3), np.arange(n - n // 3, n)


def auc(score, positive):
    """Area under the ROC curve (Mann-Whitney rank formula)."""
    ranks = rankdata(score)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def plant(iterate, planes, kind, rng):
    """``iterate`` with N_PLANTED bright disks (radius 3 px) or thin lines (1 px, 20-40 px long) in ``planes``
    at each plane's 99.9th percentile; returns (planted, mask)."""
    out, mask = iterate.copy(), np.zeros(iterate.shape, bool)
    _, ny, nx = iterate.shape
    yy, xx = np.mgrid[:ny, :nx]
    for _ in range(N_PLANTED):
        k = int(rng.choice(planes))
        m = np.zeros((ny, nx), bool)
        if kind == "disk":
            cy, cx = rng.integers(8, (ny - 8, nx - 8))
            m = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
        else:
            length, angle = rng.uniform(20, 40), rng.uniform(0, np.pi)
            cy, cx = rng.uniform(24, ny - 24), rng.uniform(24, nx - 24)
            t = np.linspace(-length / 2, length / 2, int(4 * length))
            m[np.round(cy + t * np.sin(angle)).astype(int), np.round(cx + t * np.cos(angle)).astype(int)] = True
        out[k][m] = np.percentile(iterate[k], 99.9)
        mask[k] |= m
    return out, mask


def planted_auc(observed, iterate, deg, deep, kind, seed):
    planted, mask = plant(iterate, deep, kind, np.random.default_rng(seed))
    r = check_consistency(observed, [planted], "ZYX", deg, voxel_size=VS).residual_map(1)
    score = -ndi.uniform_filter(r, (1, WINDOW, WINDOW))  # invented light: the raw is darker than the pushed iterate
    return auc(score[deep].ravel(), mask[deep].ravel())


class Table:
    """Rows of (sample, target, value, pass)."""

    def __init__(self):
        self.rows = []

    def add(self, sample, target, value, ok):
        self.rows.append({"sample": sample, "target": target, "value": value, "pass": bool(ok)})
        print(f"  {'pass' if ok else 'FAIL'}  {target}: {value}", flush=True)

    def show(self):
        w = max(len(r["target"]) for r in self.rows)
        print(f"\n{'sample':<8}{'target':<{w + 2}}{'measured':<52}result")
        for r in self.rows:
            print(f"{r['sample']:<8}{r['target']:<{w + 2}}{r['value']:<52}{'pass' if r['pass'] else 'FAIL'}")
        n_fail = sum(not r["pass"] for r in self.rows)
        print(f"\n{len(self.rows) - n_fail} of {len(self.rows)} targets met" + (f", {n_fail} missed" if n_fail else ""))


def measure_sample(name, observed, clean, deg, s, args, tmp, table, results):
    n = observed.shape[0]
    shallow, deep = thirds(n)
    res = results.setdefault(name, {})
    # (c) the clean truth as the restoration
    rep = check_consistency(observed, [clean], "ZYX", deg, voxel_size=VS)
    z = rep.plane_depth
    rel = (rep.restored_depth[0, deep] - z[deep]) / z[deep]
    c2 = rep.chi2[0, deep]
    res["truth"] = {"restored_depth": rep.restored_depth[0].tolist(), "chi2": rep.chi2[0].tolist()}
    table.add(name, "(c) truth: restored depth within 25% of own (deep)", f"{100 * rel.min():+.1f}%..{100 * rel.max():+.1f}%",
              np.all(np.abs(rel) <= 0.25))
    table.add(name, "(c) truth: chi2 in [0.7, 1.5] (deep)", f"{c2.min():.3f}-{c2.max():.3f}",
              np.all((c2 >= 0.7) & (c2 <= 1.5)))
    for d0 in D0S:
        tag = f"d0={d0:g}"
        model, secs = train_fixed_depth(observed, deg, d0, s, tmp, f"{name}-{d0:g}", args.seed)
        print(f"\n== {name}, network trained on d0 = {d0:g} um ({secs:.0f} s) ==", flush=True)
        its = model.predict_iterative(observed, "ZYX", 3)
        restored, arep = model.predict_adaptive(observed, "ZYX", max_iter=3)
        cons = arep.consistency  # the check of these iterates with the model's (the true) degradation
        med = np.median(cons.restored_depth[:, deep], axis=1)
        r = res[tag] = {"train_seconds": secs, "restored_depth": cons.restored_depth.tolist(),
                        "chi2": cons.chi2.tolist(), "plane_depth": cons.plane_depth.tolist(),
                        "deep_median_restored_depth": med.tolist(), "chosen": arep.chosen.tolist()}
        print(cons.summary())
        table.add(name, f"(a) {tag}: iteration 1 restored depth (deep median) in [{0.5 * d0:g}, {1.5 * d0:g}] um",
                  f"{med[0]:.1f} um", 0.5 * d0 <= med[0] <= 1.5 * d0)
        table.add(name, f"(a) {tag}: rises with every iteration (deep median)", " < ".join(f"{m:.1f}" for m in med),
                  np.all(np.diff(med) > 0))
        truth_d = truth_restored_depth(clean, its, deep, depth_max=2 * max(D0S) + 10)
        r["truth_restored_depth"] = truth_d
        agree = abs(med[0] - truth_d[0]) <= max(2.5, 0.25 * truth_d[0])
        table.add(name, f"(a) {tag}: iteration 1, check = what the truth says it restored (+-max(2.5 um, 25%))",
                  "check " + " / ".join(f"{m:.1f}" for m in med) + " vs truth " + " / ".join(f"{t:.1f}" for t in truth_d)
                  + " um (it. 1/2/3)", agree)
        c1 = cons.chi2[0, deep]
        table.add(name, f"(b) {tag}: chi2 of iteration 1 in [0.7, 2.0] (deep), true degradation",
                  f"{c1.min():.3f}-{c1.max():.3f} (median {np.median(c1):.3f})", np.all((c1 >= 0.7) & (c1 <= 2.0)))
        auto = check_consistency(observed, its[:1], "ZYX", "auto", voxel_size=VS)
        ca = auto.chi2[0, deep]
        r["auto"] = {"restored_depth": auto.restored_depth[0].tolist(), "chi2": auto.chi2[0].tolist(),
                     "degradation": auto.degradation.to_dict()}
        table.add(name, f"(b) {tag}: chi2 of iteration 1 in [0.7, 2.0] (deep), degradation='auto'",
                  f"{ca.min():.3f}-{ca.max():.3f} (median {np.median(ca):.3f}; restored "
                  f"{np.median(auto.restored_depth[0, deep]):.1f} um)", np.all((ca >= 0.7) & (ca <= 2.0)))
        # (e) adaptive against every single iteration
        p_all = [psnr(x, clean) for x in its]
        p_deep = [psnr(x[deep], clean[deep]) for x in its]
        pa, pa_deep = psnr(restored, clean), psnr(restored[deep], clean[deep])
        dr = detail_retention(observed[shallow], restored[shallow])
        dr_its = [detail_retention(observed[shallow], x[shallow]) for x in its]
        r["adaptive"] = {"psnr": pa, "psnr_deep": pa_deep, "detail_shallow": dr, "psnr_iterations": p_all,
                         "psnr_deep_iterations": p_deep, "detail_shallow_iterations": dr_its,
                         "psnr_raw": psnr(observed, clean), "psnr_deep_raw": psnr(observed[deep], clean[deep])}
        ch = arep.chosen
        print(f"  chosen per third: shallow {ch[shallow].min():.2f}-{ch[shallow].max():.2f}, deep "
              f"{ch[deep].min():.2f}-{ch[deep].max():.2f}; PSNR per iteration {', '.join(f'{p:.2f}' for p in p_all)}, "
              f"deep {', '.join(f'{p:.2f}' for p in p_deep)}; shallow detail {', '.join(f'{d:.3f}' for d in dr_its)}")
        kb = int(np.argmax(p_all)) + 1
        table.add(name, f"(e) {tag}: adaptive PSNR (whole) >= best iteration's",
                  f"{pa:.2f} vs {max(p_all):.2f} dB (iteration {kb})", pa >= max(p_all))
        table.add(name, f"(e) {tag}: adaptive detail retention (shallow) >= 0.97", f"{dr:.3f}", dr >= 0.97)
        kd = int(np.argmax(p_deep)) + 1
        table.add(name, f"(e) {tag}: adaptive PSNR (deep) >= best iteration's - 0.2 dB",
                  f"{pa_deep:.2f} vs {max(p_deep):.2f} dB (iteration {kd})", pa_deep >= max(p_deep) - 0.2)
        if d0 != REF_D0:
            continue
        res["figure_report"] = cons
        # (d) invented structure in iteration 1
        for kind, bar in (("disk", 0.95), ("line", 0.9)):
            a = planted_auc(observed, its[0], deg, deep, kind, args.seed)
            r[f"auc_{kind}"] = a
            table.add(name, f"(d) {tag}: planted {kind}s found, AUC >= {bar:g}", f"{a:.3f}", a >= bar)
        # (f) cost of the check against one prediction pass (round-robin in this run)
        times, _ = best_times({
            "predict": lambda: model.predict(observed, "ZYX"),
            "check 1": lambda: check_consistency(observed, its[:1], "ZYX", deg, voxel_size=VS),
            "check 3": lambda: check_consistency(observed, its, "ZYX", deg, voxel_size=VS),
        }, repeat=2, warmup=False)
        r["seconds"] = times
        ratio = times["check 1"] / times["predict"]
        table.add(name, f"(f) {tag}: check of one iterate <= 0.5x one prediction pass",
                  f"{ratio:.2f}x ({times['check 1']:.1f} vs {times['predict']:.1f} s; 3 iterates "
                  f"{times['check 3'] / times['predict']:.2f}x)", ratio <= 0.5)


def save_figure(report, path, title):
    fig = report.figure()
    fig.set_size_inches(8, 3)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=72)
    print(f"figure: {path} ({os.path.getsize(path) / 1024:.0f} kB)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small stacks and networks (a check, not the figures)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", help="save the sample's d0 = 20 um restored depth and chi2 figure here (PNG)")
    p.add_argument("--json", help="save every measured number here")
    p.add_argument("--only", choices=("sample", "dim"), help="measure one of the two stacks")
    p.add_argument("--models", help="keep the trained networks in this folder and reuse them when run again "
                                    "with the same settings (default: a temporary folder)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from deepcontrast.demo import demo_settings

    s = demo_settings(quick=args.quick)
    shape = (24, 128, 128) if args.quick else tuple(s["shape"])
    table, results = Table(), {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.models:
            tmp = str(Path(args.models) / f"{'quick' if args.quick else 'full'}-seed{args.seed}")
        for name, (observed, clean, deg) in samples(shape, args.seed).items():
            if args.only and name != args.only:
                continue
            print(f"\n######## {name}: {shape}, {deg.photons:g} photons, voxels {VS} um ########", flush=True)
            measure_sample(name, observed, clean, deg, s, args, tmp, table, results)
    table.show()
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.figure and "sample" in results:
        save_figure(results["sample"].pop("figure_report"), args.figure,
                    f"built-in sample, 2D network trained on d0 = {REF_D0:g} um")
    for r in results.values():
        r.pop("figure_report", None)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": table.rows, "results": results}, indent=1))


if __name__ == "__main__":
    main()
