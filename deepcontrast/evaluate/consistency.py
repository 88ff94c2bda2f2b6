"""The data-consistency part of an evaluation: restored depth and chi2 per iteration and third of the stack.

:func:`consistency_section` runs :func:`deepcontrast.consistency.check_consistency` on the
iterates of an evaluation (with the model's training degradation or a given one) and returns
the report's section: per iteration and shallow / middle / deep third, the median restored
depth and chi2, the per-plane choice of the data-consistency rule, and whether any restoration
happened at all.

Cost, bounded: the check searches each plane's restored depth on a central 128 px crop of its
own and fits chi2 on the whole planes in one more forward pass; ``max_side`` (512 px by
default) bounds that pass for big fields of view with a central crop (every plane, so the
thirds and the axial blur are kept). A crop is a fair sample: restored depth and chi2 are
per-plane fits over many pixels. On a stack of the demo's size (``synthetic_tissue((48, 256,
256))``) one iterate costs about a third of a prediction pass.
"""
import logging

import numpy as np

__all__ = ["consistency_section", "MAX_SIDE"]

log = logging.getLogger(__name__)

#: the check runs on a central crop of at most this many pixels along Y and along X
MAX_SIDE = 512


def consistency_section(raw, iterates, axes, degradation, *, voxel_size=None, surface="first", depth=0.0,
                        max_side=MAX_SIDE, report=None):
    """Check the iterates against the raw (on a bounded crop) and summarize per iteration and third.

    Parameters
    ----------
    raw : numpy.ndarray
        The raw image, axes of Z, Y, X only.
    iterates : sequence of numpy.ndarray
        Iteration 1, 2, ..., each of the raw's shape.
    axes : str
        Their axes.
    degradation : DeepTissueDegradation, 'auto' or None
        The forward model (the model's training degradation); ignored when ``report`` is given.
    voxel_size, surface, depth
        As in :func:`deepcontrast.consistency.check_consistency` (``surface`` 'first' or 'last').
    max_side : int or None
        Largest extent along Y and along X checked (a central crop); None checks everything.
    report : ConsistencyReport, optional
        A check already made for these iterates (e.g. ``predict_adaptive``'s); used as it is.

    Returns
    -------
    ConsistencyReport or None
        The check (None when the image holds axes other than Z, Y, X).
    dict
        JSON-safe section: ``table`` (per iteration and region: ``restored_depth``, ``chi2``
        medians), ``plane_depth``, ``restored_depth``, ``chi2`` (``(n_iter, Z)``),
        ``per_plane`` (the data-consistency rule's choice per plane), ``no_restoration``,
        ``measurable``, ``notes``, ``noise_source``, ``crop``, ``cost``; or ``skipped`` with
        the reason.

    Raises
    ------
    ValueError
        As :func:`deepcontrast.consistency.check_consistency`.
    """
    from ..consistency import check_consistency, choose_iterations

    extra = [a for a in axes if a not in "ZYX"]
    if report is None and extra:
        why = f"axes {axes!r} hold {''.join(extra)!r}: the check compares one image of Z, Y, X"
        log.info("no consistency check: %s", why)
        return None, {"skipped": why}
    crop = None
    if report is None:
        idx, crop = _central_crop(raw.shape, axes, max_side)
        if np.ndim(depth):  # a per-voxel map: cropped with the raw
            depth = np.asarray(depth)[idx]
        report = check_consistency(raw[idx], [np.asarray(y)[idx] for y in iterates], axes, degradation,
                                   voxel_size=voxel_size, surface=surface, depth=depth)
    per_plane = choose_iterations(report.restored_depth, report.chi2, report.plane_depth, smooth=0)[1]
    section = {
        "table": report.to_table(), "plane_depth": report.plane_depth.tolist(),
        "restored_depth": report.restored_depth.tolist(), "chi2": report.chi2.tolist(),
        "per_plane": per_plane.tolist(), "no_restoration": bool(report.no_restoration),
        "measurable": bool(report.measurable), "notes": list(report.notes), "noise_source": report.noise["source"],
        "crop": crop, "cost": dict(report.cost),
    }
    return report, section


def _central_crop(shape, axes, max_side):
    """(index, {'Y': [start, stop], 'X': [start, stop]} or None) of the central crop of at most max_side per axis."""
    idx = [slice(None)] * len(shape)
    crop = {}
    for a in "YX":
        n = shape[axes.index(a)]
        if max_side is not None and n > max_side:
            start = (n - int(max_side)) // 2
            idx[axes.index(a)] = slice(start, start + int(max_side))
            crop[a] = [start, start + int(max_side)]
    return tuple(idx), (crop or None)
