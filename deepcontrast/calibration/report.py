"""The calibration report: fitted values, uncertainties, what was defaulted, and a figure."""
import json
from dataclasses import dataclass, field

import numpy as np

from ..internals.files import to_jsonable

__all__ = ["CalibrationReport"]

_ORDER = ("photons", "read_noise", "background", "attenuation_length", "blur_rate", "scattering_length",
          "out_of_focus", "psf_sigma", "haze_sigma", "haze_rate")
_UNITS = {"photons": "per unit intensity", "read_noise": "intensity", "background": "intensity",
          "attenuation_length": "um", "blur_rate": "um/um", "scattering_length": "um", "out_of_focus": "",
          "psf_sigma": "um", "haze_sigma": "um", "haze_rate": "um/um"}


@dataclass
class CalibrationReport:
    """What :meth:`DeepTissueDegradation.calibrate` found, for users to check before training.

    Attributes
    ----------
    degradation : DeepTissueDegradation
        The calibrated model.
    parameters : dict
        Per parameter: ``value``, ``se`` (standard error) or ``interval`` (about two standard
        errors), ``estimated`` (False: a documented default was kept) and ``reason``.
    noise : dict
        The mean-variance fit (see :func:`deepcontrast.calibration.noise.fit_noise`).
    depth : dict
        Depth profiles (intensity, contrast: data and model) and the imaging ``mode``
        ('point-scanning', 'widefield', or 'unknown' for 2D data) with the residuals of both models.
    inputs : dict
        Axes, voxel size, surface, depth and dtype the calibration used.

    Examples
    --------
    >>> deg, report = DeepTissueDegradation.calibrate(stack, 'ZYX', voxel_size=(2, .5, .5))  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    >>> report.figure().savefig('calibration.png')  # doctest: +SKIP
    """

    degradation: object
    parameters: dict
    noise: dict
    depth: dict
    inputs: dict = field(default_factory=dict)

    @property
    def estimated(self):
        """Names of the parameters estimated from the data."""
        return [k for k in _ORDER if self.parameters.get(k, {}).get("estimated")]

    @property
    def defaulted(self):
        """Names of the parameters left at their documented defaults."""
        return [k for k in _ORDER if k in self.parameters and not self.parameters[k].get("estimated")]

    @property
    def mode(self):
        """'point-scanning', 'widefield' or 'unknown'."""
        return self.depth.get("mode", "unknown")

    def to_dict(self):
        """JSON-serializable dict (``json.dumps(report.to_dict())`` works)."""
        d = {"degradation": self.degradation.to_dict(), "parameters": self.parameters, "mode": self.mode,
             "estimated": self.estimated, "defaulted": self.defaulted, "noise": self.noise, "depth": self.depth,
             "inputs": self.inputs}
        d = to_jsonable(d)
        json.dumps(d)  # fail here, not in the caller, if something slipped through
        return d

    def summary(self):
        """A short text table: value +- uncertainty, estimated or defaulted, and why."""
        lines = [f"{'parameter':<20}{'value':>12}  {'uncertainty':<22}{'source':<10} note"]
        for k in _ORDER:
            p = self.parameters.get(k)
            if p is None:
                continue
            v = p.get("value")
            vs = "None" if v is None else f"{v:.4g}"
            if p.get("se") is not None:
                unc = f"+- {p['se']:.2g}"
            elif p.get("interval") is not None:
                lo, hi = p["interval"]
                unc = f"[{_fmt(lo)}, {_fmt(hi)}]"
            else:
                unc = ""
            src = "estimated" if p.get("estimated") else "default"
            lines.append(f"{k:<20}{vs:>12}  {unc:<22}{src:<10} {_UNITS.get(k, '')}; {p.get('reason', '')}")
        lines.append(f"imaging mode: {self.mode}" + (f" (given: microscope='{self.mode}')" if self.depth.get("mode_given") else "") + (
            f" (residuals point-scanning {self.depth['rss']['point-scanning']:.3g}, widefield "
            f"{self.depth['rss']['widefield']:.3g})" if self.depth.get("rss") else ""))
        notice = self.blur_notice()
        if notice:
            lines.append("note: " + notice)
        return "\n".join(lines)

    def blur_notice(self, extra_depth=(10.0, 40.0)):
        """One line when the calibrated model will teach no restoration or no deblurring, or None.

        "nothing to restore" when it has no depth-dependent blur or haze at all
        (:func:`deepcontrast.calibration.nothing_to_restore_notice`), else the sub-pixel blur
        notice (:func:`deepcontrast.calibration.blur_increment_notice`) for training pairs
        ``extra_depth`` um deeper, judged at the middle of the calibrated images' depth range
        and their lateral pixel size.
        """
        from .notice import restoration_notice

        lo, hi = self.inputs.get("depth_range") or [self.inputs.get("depth", 0.0)] * 2
        return restoration_notice(self.degradation, self.inputs.get("voxel_size"), extra_depth, (lo + hi) / 2)

    def __str__(self):
        return self.summary()

    def figure(self):
        """Matplotlib figure: mean-variance fit, intensity vs depth, contrast vs depth (data and model).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13, 3.8), layout="constrained")
        ax = fig.subplots(1, 3)
        bins = self.noise.get("bins", {})
        m, v = np.asarray(bins.get("mean", []), float), np.asarray(bins.get("var", []), float)
        ax[0].plot(m, v, "o", ms=4, label="flat blocks (binned)")
        if len(m):
            x = np.linspace(min(m.min(), self.noise.get("offset", m.min())), m.max(), 100)
            ax[0].plot(x, self.noise.get("slope", 0.0) * x + self.noise.get("intercept", 0.0), "-",
                       label=f"fit: photons={_fmt(self.noise.get('photons'))}, read={_fmt(self.noise.get('read_noise'))}")
            ax[0].axvline(self.noise.get("offset", 0.0), color="0.6", ls=":", label="offset (background)")
        ax[0].set(xlabel="local mean", ylabel="local noise variance", title="noise (mean-variance)")
        ax[0].legend(fontsize=8)
        att = self.depth.get("attenuation")
        if att and att.get("z"):
            ax[1].semilogy(att["z"], att["mean"], ".", label="slice mean - offset")
            if att.get("fit"):
                p = self.parameters["attenuation_length"]
                ax[1].semilogy(att["z"], att["fit"], "-", label=f"fit: L={_fmt(p['value'])} um"
                               + ("" if p["estimated"] else " (default)"))
            ax[1].legend(fontsize=8)
        else:
            ax[1].text(0.5, 0.5, "no depth axis:\ndefaults used", ha="center", va="center", transform=ax[1].transAxes)
        ax[1].set(xlabel="depth (um)", ylabel="intensity", title="intensity vs depth")
        for i, c in enumerate(self.depth.get("contrast", [])):
            z = np.asarray(c["z"], float)
            ax[2].plot(z, np.asarray(c["data"], float), ".", color=f"C{i % 10}", label="data" if i == 0 else None)
            ax[2].plot(z, np.asarray(c["model"], float), "-", color=f"C{i % 10}", label="model" if i == 0 else None)
        if self.depth.get("contrast"):
            ax[2].legend(fontsize=8)
        else:
            ax[2].text(0.5, 0.5, "no depth axis", ha="center", va="center", transform=ax[2].transAxes)
        ax[2].set(xlabel="depth (um)", ylabel="structure contrast (std / mean)",
                  title=f"contrast vs depth ({self.mode})")
        fitted = [self._with_uncertainty(k) for k in ("blur_rate", "scattering_length", "out_of_focus", "haze_sigma",
                                                       "haze_rate") if k in self.parameters]
        if fitted:
            ax[2].text(0.98, 0.98, "\n".join(fitted), ha="right", va="top", fontsize=7, transform=ax[2].transAxes)
        return fig

    def _with_uncertainty(self, name):
        """``name = value [lo, hi]`` (or ``+- se``), marked '(default)' when not estimated."""
        p = self.parameters[name]
        text = f"{name} = {_fmt(p.get('value'))}"
        if p.get("se") is not None:
            text += f" +- {p['se']:.2g}"
        elif p.get("interval") is not None:
            text += f" [{_fmt(p['interval'][0])}, {_fmt(p['interval'][1])}]"
        return text + ("" if p.get("estimated") else " (default)")


def _fmt(v):
    if v is None:
        return "None"
    return f"{v:.3g}"
