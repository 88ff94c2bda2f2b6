r"""Depth-adaptive restoration: per plane, as much restoration as the raw data support.

One number of iterations for a whole stack over-processes the shallow planes and
under-processes the deep ones. :func:`restore_adaptive` (and
:meth:`DeepContrast.predict_adaptive <AdaptiveMixin.predict_adaptive>` on top of it) asks the
data instead: :func:`deepcontrast.consistency.check_consistency` tells, for each iterate ``k``
and plane ``z``, the depth ``D[k, z]`` it restored and its residual ``chi2[k, z]`` against the
raw in noise units; :func:`choose_iterations` turns those into a per-plane, fractional choice
``chosen[z]`` in ``[0, max_iter]``, and :func:`blend_iterates` makes each plane of the output
the weighted mean of its two neighbouring iterates (iterate 0 is the raw itself).

The rule (see :func:`choose_iterations`)
----------------------------------------
Iterate ``k`` is *admissible* for plane ``z`` when

1. ``chi2[k, z] <= (1 + chi2_tol) * chi2[1, z]``: it explains the raw about as well as the
   first iterate does. The network was trained to undo one increment of the forward model, so
   iteration 1 is the reference of "a restoration the data support"; a later iterate whose
   residual grows beyond it holds structure or light the raw cannot explain (the discrepancy
   principle: stop iterating when the residual leaves the noise level reached). Issue 20's
   prototype measured exactly this: iteration 3 kept chi2 within 8% of iteration 1 on deep
   planes (1.45 -> 1.57) but 52% above it on shallow ones (1.68 -> 2.55).
2. ``D[k, z] <= depth[z] + depth_margin``: it is not restored beyond the tissue surface. A plane
   ``depth[z]`` micrometres deep has at most that much tissue above it to undo. The margin is
   0 by default. The depth fit reads a little deep near the surface (the clean truth itself
   comes out ~7 um "deep" at the surface, being sharper than the surface image by the PSF:
   ``tests/test_consistency.py``), so planes near the surface get a blend of the raw and
   iteration 1, which is what they need: on the six networks of
   ``benchmarks/bench_consistency.py`` (built-in sample and dim render, trained on 10, 20 and
   30 um) a margin of 0 instead of 10 um raised whole-stack PSNR against the truth by 0.08 to
   0.45 dB (deepest third unchanged) and the shallow third's detail retention from 0.85-0.98
   to 0.95-0.98; margins of 2.5 and 5 um fell in between.

Per plane the choice walks ``k = 1, 2, ...`` and stops before the first inadmissible iterate
(iterates are chained, so a later iterate that happens to pass after a failing one is not
trusted). Between the last admissible iterate ``k`` and the failing ``k + 1`` the choice is
fractional, ``k + t``, with ``t`` where the linear interpolation of the failing quantity
(``D`` or ``chi2``) between the two iterates meets its limit. Iterate 0 is the raw (``D = 0``,
and the chi2 condition does not apply), so a plane near the surface that iteration 1 already
restores past the surface gets a blend of the raw and iteration 1.

The per-plane choice is then smoothed along Z so that neighbouring planes never jump between
iterates: a 3-plane median (one outlying plane's fit does not pull its neighbours), a
minimum over ``2 * smooth + 1`` planes, and a Gaussian (sigma ``smooth / 2``) truncated at
``smooth`` planes. The minimum before a Gaussian of no wider support keeps the smoothed choice
at or below the (median-filtered) per-plane choice everywhere: smoothing never restores a
plane more than the rule allows it.
"""
import logging
from dataclasses import dataclass, field

import numpy as np

from ..consistency import check_consistency
from ..internals.axes import check_image_axes
from ..internals.files import to_jsonable
from .choice import CHI2_TOL, DEPTH_MARGIN, RULE, SMOOTH, blend_iterates, choose_iterations

logger = logging.getLogger(__name__)

__all__ = ["AdaptiveMixin", "AdaptiveReport", "choose_iterations", "blend_iterates", "restore_adaptive"]


@dataclass
class AdaptiveReport:
    """What :func:`restore_adaptive` chose, and why.

    Attributes
    ----------
    chosen : numpy.ndarray
        ``(Z,)`` iterations used per plane (``(1,)`` for 2D images), fractional where two
        neighbouring iterates are blended; 0 is the raw. Smooth along Z.
    per_plane : numpy.ndarray
        ``(Z,)`` the choice of the rule for each plane on its own, before smoothing.
    limit : numpy.ndarray
        ``(Z,)`` the deepest restoration (um) allowed per plane: its depth + ``depth_margin``.
    restored_depth_chosen : numpy.ndarray
        ``(Z,)`` restored depth (um) of the output, interpolated linearly between iterates.
    consistency : ConsistencyReport
        The check of every iterate (``restored_depth``, ``chi2``, ``residual_map``, ...).
    params : dict
        ``max_iter``, ``chi2_tol``, ``depth_margin``, ``smooth`` and where the degradation came from.
    rule : str
        The rule in words.
    notes : list of str
    """

    chosen: np.ndarray
    per_plane: np.ndarray
    limit: np.ndarray
    restored_depth_chosen: np.ndarray
    consistency: object
    params: dict = field(default_factory=dict)
    rule: str = RULE
    notes: list = field(default_factory=list)

    @property
    def restored_depth(self):
        """``(max_iter, Z)`` restored depth (um) of each iterate (from :attr:`consistency`)."""
        return self.consistency.restored_depth

    @property
    def chi2(self):
        """``(max_iter, Z)`` residual of each iterate in noise units (from :attr:`consistency`)."""
        return self.consistency.chi2

    @property
    def plane_depth(self):
        """``(Z,)`` depth (um) of each plane."""
        return self.consistency.plane_depth

    def to_dict(self):
        """JSON-serializable dict: the choice, the rule, and restored depth and chi2 per iteration and plane."""
        c = self.consistency
        return to_jsonable({
            "chosen": self.chosen, "per_plane": self.per_plane, "plane_depth": c.plane_depth, "limit": self.limit,
            "restored_depth_chosen": self.restored_depth_chosen, "rule": self.rule, "params": self.params,
            "notes": self.notes, "restored_depth": c.restored_depth, "chi2": c.chi2,
            "consistency": c.to_dict(),
        })

    def summary(self):
        """Text: the rule, the chosen iterations per third of the stack, and the consistency table."""
        lines = [f"adaptive restoration (max_iter {self.params.get('max_iter')}): {self.rule}",
                 f"{'region':<9}{'depth (um)':>12}{'chosen':>14}{'restored (um)':>15}"]
        for name, idx in self.consistency.regions().items():
            z, ch, rd = self.plane_depth[idx], self.chosen[idx], self.restored_depth_chosen[idx]
            lines.append(f"{name:<9}{f'{z.min():.3g}-{z.max():.3g}':>12}{f'{ch.min():.2f}-{ch.max():.2f}':>14}"
                         f"{np.median(rd):>15.3g}")
        lines += [f"note: {t}" for t in self.notes]
        return "\n".join(lines + [self.consistency.summary()])

    def __str__(self):
        return self.summary()


def restore_adaptive(raw, iterates, axes, degradation, *, voxel_size=None, surface="first", depth=0.0,
                     chi2_tol=CHI2_TOL, depth_margin=DEPTH_MARGIN, smooth=SMOOTH):
    """Depth-adaptive restoration from given iterates (numpy only; :meth:`AdaptiveMixin.predict_adaptive` predicts them).

    Parameters
    ----------
    raw : numpy.ndarray
        The raw image, axes of Z, Y, X only.
    iterates : sequence of numpy.ndarray
        Iterates 1..n (``model.predict_iterative(raw, axes, n)``).
    axes, degradation, voxel_size, surface, depth
        As in :func:`deepcontrast.consistency.check_consistency`.
    chi2_tol, depth_margin, smooth
        The rule, see :func:`choose_iterations`.

    Returns
    -------
    restored : numpy.ndarray
        float32, the raw's shape: each plane the blend of the iterates ``report.chosen`` names.
    report : AdaptiveReport

    Raises
    ------
    ValueError
        As :func:`check_consistency` and :func:`choose_iterations`.
    """
    cons = check_consistency(raw, list(iterates), axes, degradation, voxel_size=voxel_size, surface=surface,
                             depth=depth)
    chosen, per_plane = choose_iterations(cons.restored_depth, cons.chi2, cons.plane_depth, chi2_tol=chi2_tol,
                                          depth_margin=depth_margin, smooth=smooth if "Z" in cons.inputs["axes"] else 0)
    notes = []
    if not cons.measurable:  # every depth explains the raw alike: the choice would follow noise
        chosen, per_plane = np.zeros_like(chosen), np.zeros_like(per_plane)
        notes.append("restored depth is not measurable with this forward model (no depth-dependent blur or haze to "
                     "undo): the data support no restoration, so the raw is returned (predict_iterative gives the "
                     "iterates)")
    axes = cons.inputs["axes"]
    restored = blend_iterates(raw, iterates, chosen if "Z" in axes else chosen[0], axes)
    d = np.concatenate([np.zeros((1, len(chosen))), cons.restored_depth])
    k = np.minimum(np.floor(chosen).astype(int), len(d) - 2)
    t = chosen - k
    cols = np.arange(len(chosen))
    rd_chosen = (1 - t) * d[k, cols] + t * d[np.minimum(k + 1, len(d) - 1), cols]
    if np.all(cons.restored_depth < 1.0):
        notes.append("no iterate restored any depth (restored depth about 0 um everywhere): no restoration happened")
    report = AdaptiveReport(chosen=chosen, per_plane=per_plane, limit=cons.plane_depth + depth_margin,
                            restored_depth_chosen=rd_chosen, consistency=cons, notes=notes,
                            params={"max_iter": len(iterates), "chi2_tol": float(chi2_tol),
                                    "depth_margin": float(depth_margin), "smooth": int(smooth)})
    logger.info("%s", report.summary())
    return restored, report


class AdaptiveMixin:
    """predict_adaptive (mixed into DeepContrast)."""

    def predict_adaptive(self, img, axes, *, max_iter=4, degradation=None, voxel_size=None, surface="first",
                         depth=0.0, chi2_tol=CHI2_TOL, depth_margin=DEPTH_MARGIN, smooth=SMOOTH, **predict_kwargs):
        """Restore each plane as far as the raw data support: iterations chosen per plane, blended.

        Predicts iterates ``1..max_iter`` (:meth:`predict_iterative`), checks each against the
        raw through the forward model (:func:`deepcontrast.consistency.check_consistency`) and
        chooses per plane how many iterations to use (:func:`choose_iterations`: the most whose
        chi2 stays within ``chi2_tol`` of iteration 1's and whose restored depth stays within
        ``depth_margin`` of the plane's own depth, smoothed along Z; see
        :mod:`deepcontrast.models.adaptive` for the rule and why). Each output plane is the
        blend of the two iterates around its choice (iterate 0 is the raw).

        Parameters
        ----------
        img : numpy.ndarray
            Raw image with axes of Z, Y, X only (split channels and time points off first).
        axes : str
            Its axes, e.g. ``'ZYX'`` or ``'YX'``.
        max_iter : int
            Most iterations (>= 1).
        degradation : DeepTissueDegradation, dict, 'auto' or None
            The forward model of the check; None: the model's training degradation
            (``degradation_settings['degradation']``), else ``'auto'`` (calibrated on ``img``).
        voxel_size : sequence of float or None
            um per pixel per spatial axis; None: the model's training voxel size when it has one
            per spatial axis of ``img``, else 1.
        surface : {'first', 'last'}
            Which end of Z is the tissue surface.
        depth : float or numpy.ndarray
            Depth (um) of the surface-most plane (of the plane, in 2D), or a per-voxel depth map.
        chi2_tol, depth_margin, smooth
            The rule (see :func:`choose_iterations`).
        **predict_kwargs
            Passed to :meth:`predict_iterative` (``normalizer``, ``n_tiles``, ``physical``,
            ``background``, ``precision``, ...).

        Returns
        -------
        restored : numpy.ndarray
            float32, the shape of ``img``.
        report : AdaptiveReport
            ``chosen`` (Z,), ``restored_depth`` and ``chi2`` (max_iter, Z), the
            ``consistency`` report, ``summary()``, ``to_dict()``.

        Raises
        ------
        ValueError
            ``max_iter`` not an integer >= 1, axes that do not match ``img`` or hold S, T or C,
            and as :meth:`predict_iterative` and :func:`check_consistency`.

        Examples
        --------
        >>> restored, report = model.predict_adaptive(stack, 'ZYX', max_iter=3, voxel_size=(2, .5, .5))  # doctest: +SKIP
        >>> report.chosen  # iterations per plane, rising with depth  # doctest: +SKIP
        >>> model.predict_blockwise('organ.tif', 'ZYX', 'out.zarr', chosen=report.chosen)  # doctest: +SKIP
        """
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1 (most network applications), got {max_iter!r}")
        img, axes = check_image_axes(img, axes)
        extra = [a for a in axes if a not in "ZYX"]
        if extra:
            raise ValueError(f"predict_adaptive restores one image of Z, Y, X; axes {axes!r} also hold "
                             f"{''.join(extra)!r}: call it for each channel/time point, e.g. "
                             f"img[{', '.join(':' if a in 'ZYX' else '0' for a in axes)}]")
        degradation, source = self._adaptive_degradation(degradation)
        if voxel_size is None:
            vs = (self.degradation_settings or {}).get("voxel_size")
            if vs is not None and len(vs) == sum(a in "ZYX" for a in axes):
                voxel_size = tuple(vs)
                logger.info("using the model's training voxel size %s um", voxel_size)
        iterates = self.predict_iterative(img, axes, int(max_iter), **predict_kwargs)
        restored, report = restore_adaptive(img, iterates, axes, degradation, voxel_size=voxel_size,
                                            surface=surface, depth=depth, chi2_tol=chi2_tol,
                                            depth_margin=depth_margin, smooth=smooth)
        report.params["degradation"] = source
        return restored, report

    def _adaptive_degradation(self, degradation):
        """(forward model or 'auto', where it came from)."""
        from ..degradation import DeepTissueDegradation

        if isinstance(degradation, dict):
            return DeepTissueDegradation.from_dict(degradation), "given"
        if degradation is not None:
            return degradation, "auto" if isinstance(degradation, str) else "given"
        settings = self.degradation_settings or {}
        if isinstance(settings.get("degradation"), dict):
            return DeepTissueDegradation.from_dict(settings["degradation"]), "model"
        logger.info("the model records no training degradation; calibrating the forward model on the image ('auto')")
        return "auto", "auto"
