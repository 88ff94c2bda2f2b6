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
  ``D`` deeper: it runs once over the whole stack per depth of a grid (every 5 um by default),
  so the cost is one forward pass per grid point and iterate.
* Per plane, raw ~ gain * pushed + offset by weighted least squares (weights 1 / noise
  variance); the gain absorbs the attenuation and any normalization of the iterate, so ``D``
  is told by blur and haze.
* Between grid points the pushed image is interpolated linearly; chi2 of that interpolation has
  a closed form in a few per-plane sums kept from the grid pass, so ``D`` is minimized
  continuously (20 points per grid step, refined by a parabola) at no extra forward pass.
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

Cost: one forward pass of the stack per grid depth and iterate (the per-plane sums add under
10%), each iterate transformed laterally once for all its grid depths: on
``synthetic_tissue((48, 256, 256))`` with one iterate, 24 passes took 11.5-12.6 s on 2 cores
shared with other jobs (19 s when every pass transformed the iterate again and re-checked its
inputs). ``step=10`` halves it and moved restored depths by at most 1.5 um.
"""
from .check import check_consistency, noise_variance
from .choice import choose_iterations
from .report import ConsistencyReport

__all__ = ["check_consistency", "choose_iterations", "ConsistencyReport", "noise_variance"]
