"""The demo pipeline: sample -> training data -> training -> prediction -> evaluation -> export."""
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..internals.files import write_json
from .outdir import prepare_out_dir
from .settings import demo_settings

__all__ = ["run_demo"]

log = logging.getLogger(__name__)

MODEL_NAME = "demo_model"


def run_demo(out_dir="deepcontrast_demo", *, quick=False, input=None, axes=None, voxel_size=None,
             surface="first", depth=0.0, microscope="auto", overwrite=False, rng=0):
    """Run the whole DeepContrast workflow and write every result into ``out_dir``.

    Steps (each logged, long ones with a progress bar):

    1. the sample: the built-in :func:`~deepcontrast.data.synthetic_tissue` stack with its
       clean truth, or your own stack (``input``);
    2. training data: :class:`~deepcontrast.data.DegradedRawData` pushes the stack deeper with
       the forward model (for your own stack its parameters are calibrated from the images,
       ``degradation='auto'``); patches go to ``out_dir/data/training_data.npz``;
    3. training: a :class:`~deepcontrast.models.DeepContrast` model in
       ``out_dir/models/demo_model`` (by default a 2D network on the XY slices of the stack,
       trained on per-plane patches, :func:`deepcontrast.data.per_slice`, and applied with
       per-plane normalization);
    4. iterative prediction and evaluation (:func:`~deepcontrast.evaluate.evaluate_model`)
       against the clean truth (sample only), the CLAHE / Richardson-Lucy baselines and the raw
       data itself (restored depth and chi2 per third of the stack through the training
       degradation; "no restoration happened" when no iterate restored any depth):
       ``metrics.json``, figures and TIFFs in ``out_dir``;
    5. export for Fiji's CSBDeep plugin (``out_dir/models/demo_model/TF_SavedModel.zip``).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Output folder (created). A non-empty folder not created by the demo is refused
        unless ``overwrite``.
    quick : bool
        Small sample, small network, few steps: every step in well under 2 minutes (weaker
        results). The default run takes about 5-10 minutes on a 2-core CPU.
    input : str, pathlib.Path, numpy.ndarray or None
        Your own stack (TIFF file or array) instead of the built-in sample; then ``axes`` is
        required and there is no ground truth (no PSNR/SSIM).
    axes : str or None
        Axes of ``input``, e.g. ``'ZYX'`` or ``'YX'``.
    voxel_size : sequence of float or None
        Micrometres per pixel of ``input`` per spatial axis, e.g. ``(2, 0.5, 0.5)``.
    surface : {'first', 'last', 'auto', 'auto-last'}
        Which end of Z of ``input`` is the tissue surface; 'auto' ('auto-last'): the light
        enters at the first (last) slice, and calibration and training data use each voxel's
        depth below the tissue's own surface found in ``input`` (curved samples); the report's
        regions still count slices from that end.
    depth : float
        Depth (um) of the surface-most slice of ``input`` (of the plane for 2D).
    microscope : {'auto', 'point-scanning', 'widefield'}
        How ``input`` was acquired, for the calibration of the forward model (widefield also
        for spinning disk and light sheet); 'auto' decides from the data (a weak test).
    overwrite : bool
        Write into a non-empty ``out_dir`` not created by the demo.
    rng : None, int or numpy.random.Generator
        Seed of the sample, the degradations and the patch selection.

    Returns
    -------
    dict
        ``report`` (the evaluation report of ``evaluate_model``, also in ``metrics.json``),
        ``quality`` (the built-in sample's quality bar in the deepest third of the stack: PSNR
        gain of the best iteration over the raw, CLAHE and Richardson-Lucy figures, contrast
        gains, ``checks`` and ``passed``; None for your own data), ``notice`` (the one-line warning about the
        training degradation said before training, e.g. that it has nothing to restore; None), ``settings``,
        ``timings`` (seconds per step), ``paths`` (every
        file and folder written), ``history`` (the training logs per key, also in the model
        folder's ``deepcontrast.json``) and ``table`` (the printed summary). ``demo_summary.json``
        holds all but ``report`` and ``history``, which have their own files.

    Raises
    ------
    FileExistsError
        If ``out_dir`` is not empty and was not created by the demo (and not ``overwrite``).
    FileNotFoundError
        If ``input`` is a path that does not exist.
    ValueError
        If ``input`` is given without ``axes``, or the axes do not match it.

    Examples
    --------
    >>> from deepcontrast.demo import run_demo
    >>> result = run_demo('deepcontrast_demo', quick=True)  # doctest: +SKIP
    >>> print(result['table'])  # doctest: +SKIP
    """
    from . import steps

    s = demo_settings(quick)
    _check_input(input, axes, microscope)
    out = prepare_out_dir(out_dir, overwrite)
    seeds = np.random.default_rng(rng).integers(0, 2**31 - 1, size=4)
    timings, paths = {}, {"out_dir": out}
    t_start = time.perf_counter()

    with _timed(timings, 1, "sample", "sample" if input is None else f"reading {input}"):
        sample = steps.load_sample(s, input, axes, voxel_size, surface, depth, seeds[0], out, microscope)
        paths.update(sample.paths)

    with _timed(timings, 2, "training data", "training data (forward model)"):
        data = steps.make_training_data(s, sample, out / "data", seeds[1])
        paths.update(data.paths)

    with _timed(timings, 3, "training", "training"):
        model, history = steps.train(s, data, out / "models", MODEL_NAME, seeds[2])
        paths["model"] = Path(model.logdir)

    with _timed(timings, 4, "prediction and evaluation", "iterative prediction and evaluation"):
        report = steps.evaluate(s, model, sample, out)
        quality = steps.quality_check(report) if sample.clean is not None else None

    with _timed(timings, 5, "export", "export for Fiji"):
        paths["fiji_export"] = steps.export(model, out / "models" / MODEL_NAME / "TF_SavedModel.zip")
    timings["total"] = time.perf_counter() - t_start

    paths.update(_report_files(out, s["n_iter"], report))
    table = steps.summary(report, quality, timings, data.notice)
    result = dict(report=report, quality=quality, settings=s, timings=timings, notice=data.notice,
                  history={k: [float(v) for v in vs] for k, vs in (history or {}).items()},
                  paths={k: str(v) for k, v in paths.items()}, table=table)
    summary_file = out / "demo_summary.json"
    write_json(summary_file, {k: v for k, v in result.items() if k not in ("report", "history")}, default=str)
    result["paths"]["demo_summary.json"] = str(summary_file)
    return result


@contextmanager
def _timed(timings, i, key, label):
    """Log step ``i`` of 5 and store its duration (seconds) in ``timings[key]`` when it succeeds."""
    log.info("[%d/5] %s", i, label)
    t = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t


def _check_input(input, axes, microscope="auto"):
    """Refuse an input stack without axes, a path that is not a file, or microscope= without input."""
    if microscope != "auto" and input is None:
        raise ValueError("microscope= (--microscope) describes the input stack; the built-in sample is rendered "
                         "with its own known model. Give input= (--input) too, or leave it out")
    if input is not None and axes is None:
        raise ValueError("axes of the input stack are required, e.g. axes='ZYX' (--axes ZYX)")
    if isinstance(input, (str, Path)) and not Path(input).is_file():
        raise FileNotFoundError(f"input {input} does not exist (or is not a file); give the path of a TIFF stack")


def _report_files(out, n_iter, report):
    """The evaluation report's files that exist in ``out``, by file name."""
    images = ["raw"] + [f"iteration_{k}" for k in range(1, n_iter + 1)] + list(report.get("baselines", {}))
    paths = {}
    for name in ["metrics.json", "contrast_profile.png", "iterations.png", "tradeoff.png"] + [f"{i}.tif" for i in images]:
        if (out / name).exists():
            paths[name] = out / name
    return paths
