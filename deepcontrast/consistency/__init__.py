r"""Is each iterate supported by the raw data? Restored depth and noise-normalized residuals (numpy/scipy only).

If iterate ``k`` is a faithful restoration of plane ``z`` "as if imaged ``D`` micrometres
shallower", the noise-free forward model taking it from depth ``z - D`` back down to ``z``
must give the raw plane within the raw's noise. :func:`check_consistency` fits ``D`` per plane
(how much depth the iteration restored) and reports the residual there in units of the noise
(chi2 ~ 1: supported by the data, the discrepancy principle of inverse problems);
:meth:`ConsistencyReport.residual_map` shows where an iterate holds light that the raw cannot
explain.

Method
------
* The forward model is :class:`~deepcontrast.degradation.DeepTissueDegradation` without noise,
  started at each plane's (or voxel's) depth minus ``D`` (clipped at the surface) and taken
  ``D`` deeper.
* Per plane, raw ~ gain * pushed + offset by weighted least squares (weights 1 / noise
  variance); the gain absorbs the attenuation and any normalization of the iterate, so ``D``
  is told by blur and haze.
* ``D`` is searched on a central crop of 128 x 128 px of every plane (with a 16 px margin that
  feeds the kernels but is not compared: with reflection at the crop's own border the truth's
  deepest planes came out 15% short). With one depth per plane, every plane is pushed by its
  own ``D`` in each pass: a grid every 20 um first, then the bracket around each plane's best
  depth is halved down to 2.5 um (two passes per halving) and a parabola through the last three
  points gives a continuous ``D``. With a depth per voxel the forward model runs once per grid
  depth (every 5 um) and is interpolated linearly between grid depths (chi2 of that
  interpolation has a closed form in a few per-plane sums, so ``D`` is continuous at no extra
  pass).
* chi2, gain and offset are then fitted on the whole planes, pushed by their own ``D`` in one
  more pass.
* Noise variance: ``(raw - background) / photons + read_noise**2`` from the degradation (or
  from a mean-variance fit of the raw when the degradation has no noise), with the raw smoothed
  laterally by a 1-pixel Gaussian: the noisy pixel itself biased chi2 up by 10-20%.

Known answers (``tests/test_consistency.py``, ``synthetic_tissue``, 50 photons): the clean
truth of a render is restored to each deep plane's own depth within -1%..+4% with chi2
0.95-1.00; the raw itself gives 0 um (chi2 0: it explains its own noise); a render 20 um
shallower gives 20.8 um in 2D but 20.5-24.4 um over the deep third in 3D, where the forward
model's depth-varying axial blur composes only approximately (pushing by 10 then 10 um is not
pushing by 20); planted bright disks stand out in :meth:`ConsistencyReport.residual_map`
(AUC 0.97).

:func:`choose_iterations` (:mod:`.choice`) turns a report into the most restoration the data
support per plane: the rule of ``predict_adaptive`` and of the data-consistency suggestion of
:func:`deepcontrast.metrics.suggest_n_iter`.

Cost: about 13 forward passes of the 160 x 160 px search crop and one of the whole stack per
iterate, so it hardly grows with the field of view. On ``synthetic_tissue((48, 256, 256))``
one iterate took 0.31 s, 0.36x one prediction pass of the demo's 2D network in bfloat16
(timed round-robin); the whole-plane grid search it replaced took 1.45x. Against that grid
search on the iterates of trained networks the restored depths moved by at most 0.6 um (deep
third medians), and the truth's deep planes are restored to -7%..+3% of their own depth.
"""
from .check import check_consistency, noise_variance
from .choice import choose_iterations
from .report import ConsistencyReport

__all__ = ["check_consistency", "choose_iterations", "ConsistencyReport", "noise_variance"]
