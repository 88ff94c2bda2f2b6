"""Documentation text and cover image of exported bioimage.io packages (no TF, no bioimageio)."""
import json

import numpy as np

_PAPER = "Martins, Kalaidzidis, Zerial, Jug: DeepContrast, arXiv 2308.08365 (2023)"


def documentation_markdown(*, name, description, config, net_axes, pmin, pmax, halo, degradation_settings, probabilistic,
                           norm_axes=None):
    """Markdown for the package's ``README.md``: what the model does, its input, and how to use it."""
    lines = _what_it_does(name, description)
    lines += _input_output(config, net_axes, pmin, pmax, halo, probabilistic, norm_axes)
    lines += _iterative_use()
    lines += _training_settings(degradation_settings)
    lines += _network_and_limits(config)
    return "\n".join(lines)


def _what_it_does(name, description):
    return [
        f"# {name}",
        "",
        description,
        "",
        "## What this model does",
        "",
        "A DeepContrast network (CSBDeep CARE U-Net) restores contrast in deep-tissue fluorescence "
        f"images ({_PAPER}). It was trained without ground truth: raw images were pushed *deeper* "
        "with a forward model of deep-tissue degradation (signal attenuation, PSF widening, "
        "scattered-light haze, shot noise) and the network learned to undo that extra degradation.",
        "",
    ]


def _input_output(config, net_axes, pmin, pmax, halo, probabilistic, norm_axes=None):
    spatial = "".join(a for a in net_axes if a in "ZYX")
    per = "per image and channel" if (norm_axes or spatial) == spatial else "per z plane and channel"
    return [
        "## Input and output",
        "",
        f"- Axes: batch, {', '.join(spatial.lower())}, channel ({config.get('n_channel_in', 1)} input channel(s)); "
        f"spatial sizes must be multiples of the declared step.",
        f"- Preprocessing (declared, consumers apply it): percentile normalization {per}, "
        f"percentile {pmin:g} -> 0 and {pmax:g} -> 1 (`scale_range`), as in training and in CSBDeep's `predict`.",
        "- Output: the restored image in those normalized units (CSBDeep's `predict` maps it back to "
        "the input's intensity range; bioimage.io consumers get normalized values)."
        + (" The output holds the mean and then the scale of a Laplace distribution per channel." if probabilistic else ""),
        f"- Tiling: a halo of {halo} pixels per side along each spatial axis is enough to hide tile seams.",
        "",
    ]


def _iterative_use():
    return [
        "## Iterative use",
        "",
        "Applying the network again to its own output keeps raising contrast while fine detail is "
        "slowly lost. **bioimage.io consumers (deepImageJ, ilastik, napari, QuPath) run one "
        "iteration.** To iterate, run the model again on its output, or use "
        "`deepcontrast.DeepContrast.predict(img, axes, n_iter=k)` in Python, which also keeps "
        "intensities comparable between iterations.",
        "",
    ]


def _training_settings(degradation_settings):
    lines = [
        "## Forward-model settings used for training",
        "",
    ]
    if degradation_settings:
        lines += [
            "The training pairs were made with these settings (lengths in micrometres; "
            "`extra_depth` is how much deeper the inputs were made look):",
            "",
            "```json",
            json.dumps(degradation_settings, indent=2, default=str),
            "```",
        ]
    else:
        lines += ["Not recorded with this model (it was not trained with deepcontrast's data generation)."]
    return lines


def _network_and_limits(config):
    return [
        "",
        "## Network configuration",
        "",
        "```json",
        json.dumps(config, indent=2, default=str),
        "```",
        "",
        "## Limitations",
        "",
        "The network only knows the degradation it was trained on: images from other microscopes, "
        "depths or noise levels than the training data may be restored poorly. Check results against "
        "the raw data; do not quantify intensities from restored images without validation.",
        "",
    ]


def _to_uint8(img):
    lo, hi = np.percentile(img, (1, 99.8))
    return (np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)


def cover_image(x, y, net_axes):
    """A 2:1 uint8 RGB cover: normalized input (left) next to the output (right).

    ``x`` and ``y`` are test tensors with axes ``'B' + net_axes`` (channel last); 3D volumes
    show their middle Z slice, multi-channel images their first channel.
    """

    def plane(t):
        t = np.asarray(t, np.float32)[0, ..., 0]
        while t.ndim > 2:
            t = t[t.shape[0] // 2]
        return _to_uint8(t)

    a, b = plane(x), plane(y)
    h = min(a.shape[0], b.shape[0])
    w = min(a.shape[1], b.shape[1])
    side = min(h, w)
    a, b = a[:side, :side], b[:side, :side]
    rgb = np.concatenate([a, b], axis=1)
    k = max(1, int(np.ceil(256 / side)))
    rgb = np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
    return np.repeat(rgb[..., None], 3, axis=-1)
