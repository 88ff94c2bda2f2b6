"""The report of an evaluation: ``metrics.json``, figures and TIFFs (:func:`write_report`) and the
short text table (:func:`format_table`)."""
import json
import logging
from pathlib import Path

import numpy as np

from ..internals.files import atomic_write
from ..internals.tiff import write_tiff

__all__ = ["REPORT_FILES", "check_targets", "consistency_lines", "format_table", "write_report"]

log = logging.getLogger(__name__)

#: fixed files written by :func:`write_report` (plus ``raw.tif``, ``iteration_<k>.tif``, ``<baseline>.tif``)
REPORT_FILES = ("metrics.json", "contrast_profile.png", "iterations.png", "tradeoff.png")
_BASELINE_LABELS = {"clahe": "CLAHE", "richardson_lucy": "Richardson-Lucy"}


def _targets(out_dir, n_iter, baseline_names):
    out = Path(out_dir)
    tifs = ["raw.tif"] + [f"iteration_{k}.tif" for k in range(1, n_iter + 1)] + [f"{b}.tif" for b in baseline_names]
    return [out / f for f in REPORT_FILES + tuple(tifs)]


def check_targets(out_dir, n_iter, baseline_names, overwrite):
    """Refuse a report folder that is a file, or that holds report files when not ``overwrite``.

    Parameters
    ----------
    out_dir : str or Path
        The report folder (need not exist).
    n_iter : int
        Number of iterations the report will hold (``iteration_<k>.tif``).
    baseline_names : sequence of str
        Baselines the report will hold (``<name>.tif``).
    overwrite : bool
        Whether existing report files may be replaced.

    Raises
    ------
    ValueError
        If ``out_dir`` is a file.
    FileExistsError
        If report files exist and not ``overwrite``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"report folder {out} is a file; pass a folder path")
    existing = [p.name for p in _targets(out, n_iter, baseline_names) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds report files ({', '.join(existing[:3])}"
                              f"{', ...' if len(existing) > 3 else ''}); pass overwrite=True (--overwrite) or another folder")


def write_report(out_dir, report, raw, iterates, axes, *, baselines=None, overwrite=False):
    """Write a report folder: ``metrics.json``, the three figures and TIFFs of every image.

    Each file is written atomically (temporary file, then rename). Existing files are refused
    unless ``overwrite``.

    Parameters
    ----------
    out_dir : str or Path
        Folder (created if needed).
    report : dict
        Output of :func:`~deepcontrast.evaluate.evaluate_iterates` for these images.
    raw, iterates, axes, baselines
        The images the report was computed from.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FileExistsError
        If a target exists and not ``overwrite``.
    """
    baselines = dict(baselines or {})
    out = Path(out_dir)
    check_targets(out, len(iterates), list(baselines), overwrite)
    out.mkdir(parents=True, exist_ok=True)
    written = [atomic_write(out / "metrics.json", lambda t: Path(t).write_text(json.dumps(report, indent=2)))]
    figs = _report_figures(report, raw, iterates, axes, baselines)
    for name, fig in figs.items():
        written.append(atomic_write(out / name, lambda t, fig=fig: fig.savefig(t, dpi=110, format="png")))
    a = axes.upper()
    written.append(write_tiff(out / "raw.tif", np.asarray(raw, np.float32), axes=a))
    for k, y in enumerate(iterates, 1):
        written.append(write_tiff(out / f"iteration_{k}.tif", np.asarray(y, np.float32), axes=a))
    for n, x in baselines.items():
        written.append(write_tiff(out / f"{n}.tif", np.asarray(x, np.float32), axes=a))
    log.info("wrote report to %s", out)
    return written


def _report_figures(report, raw, iterates, axes, baselines):
    """The three figures of a report folder, by file name."""
    from ..plot import plot_contrast_profile, plot_iterations, plot_tradeoff

    labels = {"raw": raw, **{f"iteration {k}": y for k, y in enumerate(iterates, 1)},
              **{_BASELINE_LABELS.get(n, n): x for n, x in baselines.items()}}
    rows = report["iterations"]
    key = "deepest_third" if "deepest_third" in report["regions"] else "all"
    z = _display_slice(report)
    what = "whole image" if key == "all" else "metrics of the deepest third"
    figs = {
        "contrast_profile.png": plot_contrast_profile(labels, axes, depths=report["contrast_profile"]["depth_um"],
                                                      metric=report["contrast_profile"]["metric"]),
        "iterations.png": plot_iterations(raw, list(labels.values())[1:], axes, labels=list(labels),
                                          titles=[_panel_title(r[key]) for r in rows]
                                          + [_panel_title(b[key]) for b in report["baselines"].values()],
                                          z=z, zoom=True, consistency=(report.get("consistency") or {}).get("table"),
                                          title=f"Raw, iterations and baselines ({'' if z is None else f'Z slice {z}, '}{what})"),
        "tradeoff.png": plot_tradeoff([{"iteration": r["iteration"], **r["all"]} for r in rows],
                                      suggested=report["suggested_n_iter"],
                                      baselines={b["label"]: b["all"] for b in report["baselines"].values()}),
    }
    return figs


def _display_slice(report):
    reg = report["regions"].get("deepest_third")
    return None if reg is None else (reg["z_slices"][0] + reg["z_slices"][1]) // 2


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _panel_title(m):
    t = f"gain {_fmt(m.get('contrast_gain'), '.2f')}, detail {_fmt(m.get('detail_retention'), '.2f')}"
    t += f"\nmean {_fmt(m.get('mean'), '.3g')}, p99.5 {_fmt(m.get('p99_5'), '.3g')}"
    if m.get("below_background"):
        t += " (below bg!)"
    if "psnr" in m:
        t += f"\nPSNR {_fmt(m.get('psnr'), '.1f')} dB, SSIM {_fmt(m.get('ssim'), '.2f')}"
    return t


def consistency_lines(report):
    """The data-consistency block of :func:`format_table`: restored depth / chi2 per iteration and third ([] without)."""
    section = report.get("consistency")
    if not section or not section.get("table"):
        return []
    rows = section["table"]
    regions = list(dict.fromkeys(r["region"] for r in rows))
    span = {r["region"]: r["depth_um"] for r in rows}
    lines = ["", "data consistency (median restored depth um / chi2 vs the raw; chi2 ~ 1: explained within its noise):",
             f"{'':<16}" + "".join(f"{f'{g} {span[g][0]:.3g}-{span[g][1]:.3g} um':>24}" for g in regions)]
    for k in sorted({r["iteration"] for r in rows}):
        cells = {r["region"]: f"{r['restored_depth']:.3g} / {r['chi2']:.3g}" for r in rows if r["iteration"] == k}
        lines.append(f"{f'iteration {k}':<16}" + "".join(f"{cells[g]:>24}" for g in regions))
    lines += [f"note: {t}" for t in section.get("notes", [])]
    return lines + [""]


def format_table(report):
    """The short summary table of a report (contrast, detail, level drift, PSNR/SSIM, suggestion).

    Per image: contrast gain and detail retention (whole image and deepest third), PSNR/SSIM
    with ground truth, and the mean and 99.5th percentile of the deepest third (whole image
    for 2D), so a contrast gain that comes from darkening shows; ``<bg`` marks an image with
    values below the background (negative light).

    Parameters
    ----------
    report : dict
        Output of :func:`~deepcontrast.evaluate.evaluate_iterates` / :func:`~deepcontrast.evaluate.evaluate_model`
        (or ``metrics.json`` loaded).

    Returns
    -------
    str
        A plain-text table, one line per iteration and baseline.
    """
    rows = [(r["label"], r) for r in report["iterations"]] + [(b["label"], b) for b in report["baselines"].values()]
    deep = "deepest_third" in report["regions"]
    truth = "psnr" in report["iterations"][0]["all"]
    cols = ["gain", "detail"] + (["PSNR", "SSIM"] if truth else [])
    keys = ["all"] + (["deepest_third"] if deep else [])
    head = f"{'':<16}" + "".join(f"{c:>9}" for c in cols)
    if deep:
        head += " |" + "".join(f"{c:>9}" for c in cols)
    head += " |" + "".join(f"{c:>9}" for c in ("mean", "p99.5")) + ("   (deepest third)" if deep else "")
    lines = [head]
    for label, r in rows:
        line = f"{label:<16}"
        for key in keys:
            m = r[key]
            vals = [_fmt(m.get("contrast_gain"), "9.2f"), _fmt(m.get("detail_retention"), "9.2f")]
            if truth:
                vals += [_fmt(m.get("psnr"), "9.2f"), _fmt(m.get("ssim"), "9.3f")]
            line += ("" if key == "all" else " |") + "".join(f"{v:>9}" for v in vals)
        m = r[keys[-1]]
        line += " |" + "".join(f"{_fmt(m.get(k), '9.4g'):>9}" for k in ("mean", "p99_5"))
        if r["all"].get("below_background"):
            line += "  <bg"
        lines.append(line)
    if any(r["all"].get("below_background") for _, r in rows):
        noise = report.get("background_noise")
        lines.append(f"<bg: 0.1% of the values lie below the background ({report.get('background', 0.0):g}) by more than "
                     f"4 times the raw's noise there{'' if noise is None else f' ({noise:.3g})'}: negative light")
    lines += consistency_lines(report)
    if report.get("no_restoration"):
        lines.append("no restoration happened: no iterate restored any depth the raw data can tell (restored depth "
                     "about 0 um, or not measurable with this forward model), so no n_iter is suggested; check the "
                     "calibration note (voxel size, surface, blur_rate, scattering_length)")
    else:
        by = report.get("suggested_by", "image statistics")
        why = ("the most iterations the planes' raw data support" if by == "data consistency"
               else "last iteration that still raises contrast and keeps detail")
        lines.append(f"suggested n_iter: {report['suggested_n_iter']}  (by {by}: {why}; rule in metrics.json)")
    if truth:
        best = report["best_iteration_by_psnr"]
        lines.append("best iteration by PSNR vs ground truth: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in best.items()))
    return "\n".join(lines)
