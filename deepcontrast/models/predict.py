"""Iterative, tiled prediction for :class:`~deepcontrast.models.DeepContrast` (a mixin).

Normalization across iterations (the scheme, and why): the raw image is normalized *once*
(by default with percentiles, as CSBDeep does); all iterations run in that normalized space,
each output fed directly to the next iteration; every iterate is mapped back with the *raw*
image's normalization (``normalizer.after``). So iterate k is the network applied k times to
the normalized raw, all iterates share the raw's intensity scale (comparable with each other
and with the raw), and re-normalizing in between cannot undo the contrast change a step made.

Physical iterates (default): after every network pass, no value goes below the background and
each plane keeps the light above the background of the pass's input (:mod:`deepcontrast.models.physical`); ``physical=False`` gives the bare network.
"""
import hashlib
import logging

import numpy as np
from csbdeep.data import PadAndCropResizer, PercentileNormalizer
from csbdeep.internals.predict import tile_overlap

from ..internals.axes import axes_last, check_image_axes
from ..internals.checks import check_iterate, check_number
from ..data.normalize import SlicePercentileNormalizer
from .physical import normalized_background, pad_like_input, physical_step
from .precision import check_precision, model_precision, resolve_precision, with_precision
from .tiling import auto_n_tiles, bytes_per_voxel, choose_halo, halo_deviations, predict_tiled, tile_layout

logger = logging.getLogger(__name__)

_DEFAULT_NORMALIZER = PercentileNormalizer()
_DEFAULT_RESIZER = PadAndCropResizer()

#: tolerance of tiled vs untiled prediction (max abs deviation / output range)
TILE_TOLERANCE = 0.01
#: the halo is chosen so the probes deviate by at most this fraction of the tolerance
HALO_SAFETY = 0.5
#: an iterate beyond this multiple of the normalized raw's largest value (at least 1) has diverged
DIVERGENCE_FACTOR = 100.0


class PredictMixin:
    """predict / predict_iterative with measured-halo tiling (mixed into DeepContrast)."""

    def predict(self, img, axes, normalizer=_DEFAULT_NORMALIZER, resizer=_DEFAULT_RESIZER, n_tiles=None, *, n_iter=1,
                physical=True, background=None, precision=None):
        """Restore contrast of a raw image (optionally applying the network ``n_iter`` times).

        Parameters
        ----------
        img : numpy.ndarray
            Raw image; never modified.
        axes : str
            Axes of ``img``; must contain the model's spatial axes (``'YX'`` or ``'ZYX'``).
            Other axes (S, T, and Z for a 2D model) are processed plane by plane (batched);
            a channel axis C must have ``n_channel_in`` entries.
        normalizer : csbdeep.data.Normalizer or None
            Default: a fresh ``PercentileNormalizer()`` per call (percentiles 2 and 99.8), or
            ``SlicePercentileNormalizer()`` (each plane on its own) when the config sets
            ``normalize_per_slice``.
        resizer : csbdeep.data.Resizer or None
            Default: ``PadAndCropResizer()`` (pads to a size the network accepts).
        n_tiles : None, 'auto' or sequence of int
            Tiles per axis of ``img`` (1 for non-spatial axes), as in CSBDeep. ``None``/``'auto'``
            chooses the fewest tiles whose network call stays within ``config.predict_memory_mb``
            (MiB, default 2048; estimated at ~1 KiB per voxel for the default net). Tiles carry
            a halo measured on the network itself (:meth:`tile_halo`) so the output stays within
            1% of the output range of the untiled output (per iteration ``1% / n_iter``); as many
            equal-size tiles as the memory budget allows go through one network call.
        n_iter : int
            Number of times the network is applied (keyword-only); the result equals
            ``predict_iterative(img, axes, n_iter)[-1]``.
        physical : bool
            Keep every iterate physical (keyword-only, default True): no value below
            ``background``, and each plane (of a 2D or a 3D network) keeps the light above
            the background of the iteration's input; restoration moves light from haze
            and blur back into structures, it does not make or remove it (see
            :mod:`deepcontrast.models.physical`). False returns the bare network output.
        background : float or None
            Intensity of no light in ``img``'s units (camera offset; keyword-only). ``None``:
            the background of the model's training data (``degradation_settings``), 0 when
            unknown.
        precision : str or None
            Precision of the network's computation (keyword-only): ``None`` (default) the
            model's own (``config.precision``), or ``'auto'``, ``'float32'``, ``'bfloat16'``,
            ``'float16'`` (see :class:`~deepcontrast.models.Config`). Mixed precisions keep the
            final layer float32; the output is float32 in every case. Any other value raises a
            ValueError.

        Returns
        -------
        numpy.ndarray
            float32, same shape and axes as ``img`` (for a single-channel model).

        Raises
        ------
        ValueError
            Axes that do not match the image or the model, an image smaller than the
            network's minimum along a spatial axis, NaN/Inf values, ``n_iter < 1``, a
            non-finite ``background``; an iteration that diverged (NaN/Inf, or beyond
            ``DIVERGENCE_FACTOR`` times the normalized raw's largest value).

        Examples
        --------
        >>> restored = model.predict(img, 'ZYX', n_iter=2)  # doctest: +SKIP
        """
        out = None
        for out in self._iterate(img, axes, normalizer, resizer, n_tiles, n_iter, physical, background,
                                 precision=precision):
            pass
        return out

    def predict_iterative(self, img, axes, n_iter, normalizer=_DEFAULT_NORMALIZER, resizer=_DEFAULT_RESIZER,
                          n_tiles=None, *, physical=True, background=None, precision=None):
        """Apply the network ``n_iter`` times: iteration k is the network applied to iteration k-1.

        The raw image is normalized once; each output is fed directly to the next iteration in
        that normalized space; every iterate is mapped back with the raw image's normalization,
        so all iterates are on the raw's intensity scale (see the module docstring).

        Parameters
        ----------
        img, axes, normalizer, resizer, n_tiles, physical, background, precision
            As in :meth:`predict`.
        n_iter : int
            Number of iterations (>= 1).

        Returns
        -------
        list of numpy.ndarray
            ``n_iter`` float32 arrays, each with the shape of ``img``.

        Raises
        ------
        ValueError
            As :meth:`predict`; also when the model's input and output channels differ.

        Examples
        --------
        >>> iterates = model.predict_iterative(img, 'YX', 4)  # doctest: +SKIP
        """
        return list(self._iterate(img, axes, normalizer, resizer, n_tiles, n_iter, physical, background,
                                  precision=precision))

    def iter_predict(self, img, axes, n_iter, normalizer=_DEFAULT_NORMALIZER, resizer=_DEFAULT_RESIZER, n_tiles=None,
                     *, physical=True, background=None, precision=None):
        """:meth:`predict_iterative` as a generator: each iterate as soon as it is computed.

        For callers that show progress or stop early (a viewer's cancel button): iteration
        ``k + 1`` is only computed when iterate ``k`` has been taken. Parameters as in
        :meth:`predict_iterative`; arguments are checked on the first ``next()``.

        Yields
        ------
        numpy.ndarray
            Iterate 1, 2, ..., ``n_iter`` (float32, the shape of ``img``).

        Examples
        --------
        >>> for k, restored in enumerate(model.iter_predict(img, 'ZYX', 3), 1):  # doctest: +SKIP
        ...     print(k, restored.mean())
        """
        yield from self._iterate(img, axes, normalizer, resizer, n_tiles, n_iter, physical, background,
                                 precision=precision)

    # ----- internals -----------------------------------------------------------------------

    def _net_block(self):
        return 2 ** self.config.unet_n_depth

    def tile_halo(self, tol=TILE_TOLERANCE):
        """Halo (pixels per spatial axis) that keeps tiled output within ``tol`` of untiled.

        Measured on the current weights with probe images (see
        :func:`deepcontrast.models.tiling.measure_halo`; chosen for half of ``tol``) and
        cached until the weights change.

        Parameters
        ----------
        tol : float
            Max abs deviation of tiled from untiled output relative to the output range.

        Returns
        -------
        tuple of int

        Examples
        --------
        >>> model.tile_halo()  # doctest: +SKIP
        (12, 12)
        """
        net = self._net_for(self._active_precision())
        key = (_fingerprint(self.keras_model), model_precision(net))
        if key not in self._halo_cache:
            block = self._net_block()
            theory = tile_overlap(self.config.unet_n_depth, self.config.unet_kern_size)
            self._halo_cache.clear()
            self._halo_cache[key] = halo_deviations(lambda b: np.asarray(net(b, training=False), np.float32),
                                                    self.config.n_dim, block, theory,
                                                    n_channel_in=self.config.n_channel_in)
            logger.debug("tiling halo deviations (theoretical receptive field %d px): %s", theory,
                         self._halo_cache[key])
        halo = choose_halo(self._halo_cache[key], HALO_SAFETY * tol)
        return (halo,) * self.config.n_dim

    def _iterate(self, img, axes, normalizer, resizer, n_tiles, n_iter, physical=True, background=None,
                 precision=None):
        if precision is not None:
            precision = resolve_precision(check_precision(precision), self.config.n_dim)
        self._predict_precision = precision
        try:
            yield from self._iterate_in_precision(img, axes, normalizer, resizer, n_tiles, n_iter, physical,
                                                  background)
        finally:
            self._predict_precision = None

    def _iterate_in_precision(self, img, axes, normalizer, resizer, n_tiles, n_iter, physical, background):
        if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1 (number of network applications), got {n_iter!r}")
        if normalizer is _DEFAULT_NORMALIZER:
            normalizer = self._default_normalizer()
        if resizer is _DEFAULT_RESIZER:
            resizer = PadAndCropResizer()
        normalizer, resizer = self._check_normalizer_resizer(normalizer, resizer)
        cfg = self.config
        if n_iter > 1 and cfg.n_channel_in != cfg.n_channel_out:
            raise ValueError(f"iterative prediction needs as many output as input channels; this model maps "
                             f"{cfg.n_channel_in} to {cfg.n_channel_out} channels; use n_iter=1")
        img, axes = check_image_axes(img, axes)
        x, undo, img_tiles = self._to_net(img, axes, n_tiles)
        block = self._net_block()
        spatial = cfg.axes.replace("C", "")
        for a, n in zip(spatial, x.shape[1:-1]):
            if n < block:
                raise ValueError(f"image has {n} pixels along {a} but the network needs at least {block} "
                                 f"(2**unet_n_depth); use a larger image or a model with smaller unet_n_depth")
        net_axes = "S" + cfg.axes
        x = normalizer.before(x, net_axes)
        x = resizer.before(x, net_axes, (1,) + (block,) * cfg.n_dim + (1,))
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        bad = [n for n in x.shape[1:-1] if n % block]
        if bad:
            raise ValueError(f"spatial sizes {x.shape[1:-1]} must be multiples of {block} for this network; "
                             "use resizer=PadAndCropResizer()")
        floor = self._floor(normalizer, background, x.shape, net_axes, resizer) if physical else None
        tiles, max_batch, halo = self._plan(x.shape, img_tiles, TILE_TOLERANCE / n_iter)
        n_windows = int(np.prod(tiles)) * x.shape[0]
        pbar = None
        if n_windows > 1:
            from tqdm.auto import tqdm

            pbar = tqdm(total=n_windows * n_iter, desc="predict", unit="tile", disable=n_windows * n_iter < 4)
        bound = DIVERGENCE_FACTOR * max(1.0, float(np.max(np.abs(x))))
        try:
            for k in range(1, n_iter + 1):
                x = check_iterate(self._net_step(x, tiles, halo, max_batch, pbar, floor=floor), bound, k)
                yield undo(self._from_net(x, net_axes, normalizer, resizer))
        finally:
            if pbar is not None:
                pbar.close()

    def _default_normalizer(self):
        """A fresh instance of the normalizer :meth:`predict` uses when none is given."""
        per_slice = getattr(self.config, "normalize_per_slice", False)
        return SlicePercentileNormalizer() if per_slice else PercentileNormalizer()

    def _floor(self, normalizer, background, shape, net_axes, resizer=None):
        """The background in the normalized space of the network input (None: no floor).

        With a per-plane normalizer of a 3D network the floor has one value per Z plane; it is
        padded as ``resizer`` padded the input (of shape ``shape``), so padded planes get the
        floor of the planes they were made from.
        """
        if background is None:
            background = self.background
        background = check_number(background, "background", "intensity of no light")
        cfg = self.config
        if cfg.n_channel_in != cfg.n_channel_out:
            return None
        floor = normalized_background(normalizer, background, shape[0], net_axes, shape[-1])
        if floor is not None:
            floor = pad_like_input(floor, shape, net_axes, resizer)
        if floor is None:
            logger.info("physical iterates need a normalizer that maps back (do_after); iterating without them")
        return floor

    def _net_step(self, x, tiles, halo, max_batch, pbar=None, floor=None):
        """One iteration in the normalized space: the next iterate of net-shaped ``x``.

        ``x`` is ``(B, *spatial, C)``, normalized and resized; every caller (in-memory and
        blockwise prediction) goes through this one method, so what an iteration does is
        defined here only. With ``floor`` (the background in normalized units, see
        :meth:`_floor`), the output is made physical (:func:`physical_step`).
        """
        cfg = self.config
        n_out = cfg.n_channel_out * (2 if cfg.probabilistic else 1)
        y = predict_tiled(self._net_fn(), x, tiles, halo, self._net_block(),
                          n_channel_out=n_out, max_batch=max_batch, pbar=pbar)
        if cfg.probabilistic:
            y = y[..., :cfg.n_channel_out]
        if floor is not None:
            net_axes = "S" + cfg.axes if "C" in cfg.axes else "S" + cfg.axes + "C"
            y = physical_step(x, y, floor, axis=(net_axes.index("Y"), net_axes.index("X")))  # per plane
        return y

    def _active_precision(self):
        """Precision of the prediction under way (set by :meth:`_iterate`), else the model's own."""
        return getattr(self, "_predict_precision", None) or model_precision(self.keras_model)

    def _net_for(self, precision):
        """The network computing in ``precision``: ``keras_model`` itself or a copy with its weights."""
        if precision == model_precision(self.keras_model):
            return self.keras_model
        cache = self.__dict__.setdefault("_precision_nets", {})
        key = _fingerprint(self.keras_model)
        if cache.get(precision, (None,))[0] != key:
            cache[precision] = (key, with_precision(self.keras_model, precision))
        return cache[precision][1]

    def _net_fn(self):
        """The callable (batch -> float32 output) :meth:`_net_step` applies in the active precision."""
        net = self._net_for(self._active_precision())
        return lambda b: np.asarray(net.predict_on_batch(b), np.float32)

    def _plan(self, shape, img_tiles, tol=TILE_TOLERANCE):
        """(n_tiles per spatial axis, windows per call, halo) for a net-shaped input."""
        cfg = self.config
        block = self._net_block()
        spatial_shape = shape[1:-1]
        budget = float(cfg.predict_memory_mb) * 2 ** 20
        bpv = bytes_per_voxel(cfg.unet_n_first, cfg.n_channel_in)
        whole = bpv * float(np.prod(spatial_shape))
        if img_tiles is None and whole <= budget:
            return (1,) * cfg.n_dim, max(1, int(budget // whole)), (0,) * cfg.n_dim
        halo = self.tile_halo(tol)
        tiles = tuple(img_tiles) if img_tiles is not None else auto_n_tiles(spatial_shape, halo, block, bpv, budget)
        if all(t == 1 for t in tiles):
            return tiles, max(1, int(budget // whole)), halo
        window = np.prod([tile_layout(n, t, h, block)[0] for n, t, h in zip(spatial_shape, tiles, halo)], dtype=float)
        return tiles, max(1, int(budget // (bpv * window))), halo

    def _to_net(self, img, axes, n_tiles):
        """Move ``img`` to ``(B, *spatial, C)``; return it, the inverse, and n_tiles per spatial axis."""
        cfg = self.config
        spatial = cfg.axes.replace("C", "")
        missing = [a for a in spatial if a not in axes]
        if missing:
            raise ValueError(f"image axes {axes!r} lack {''.join(missing)}: this is a {cfg.n_dim}D model for "
                             f"{spatial!r} images; pass an image with those axes (or use a {len(axes.replace('C', ''))}D model)")
        if "C" in axes:
            nc = img.shape[axes.index("C")]
            if nc != cfg.n_channel_in:
                raise ValueError(f"image has {nc} channels (axis C) but the model expects {cfg.n_channel_in}")
        elif cfg.n_channel_in != 1:
            raise ValueError(f"the model expects {cfg.n_channel_in} channels; give the image a C axis")
        x, order = axes_last(img, axes, spatial + "C")
        batch_shape = x.shape[:len(order) - len(spatial) - ("C" in axes)]
        if "C" not in axes:
            x, order = x[..., None], order + "C"
        x = x.reshape((-1,) + x.shape[len(batch_shape):])

        tiles = None
        if n_tiles is not None and not (isinstance(n_tiles, str) and n_tiles == "auto"):
            try:
                nt = tuple(int(t) for t in n_tiles)
                if len(nt) != len(axes) or any(t < 1 or t != f for t, f in zip(nt, n_tiles)):
                    raise ValueError
            except (TypeError, ValueError):
                raise ValueError(f"n_tiles must be None, 'auto' or {len(axes)} integers >= 1 (one per axis "
                                 f"of {axes!r}), got {n_tiles!r}") from None
            off = [a for a, t in zip(axes, nt) if t > 1 and a not in spatial]
            if off:
                raise ValueError(f"n_tiles > 1 only for the spatial axes {spatial!r}, not for {''.join(off)}")
            tiles = tuple(nt[axes.index(a)] for a in spatial)

        def undo(y):
            c_out = y.shape[-1]
            y = axes_last(y.reshape(batch_shape + y.shape[1:]), order, axes if "C" in axes else axes + "C")[0]
            if "C" not in axes and c_out == 1:
                y = y[..., 0]
            return np.ascontiguousarray(y, dtype=np.float32)

        return x, undo, tiles

    def _from_net(self, y, net_axes, normalizer, resizer):
        y = resizer.after(y, net_axes)
        if normalizer.do_after and self.config.n_channel_in == self.config.n_channel_out:
            y, _ = normalizer.after(y, None, net_axes)
        return y


def _fingerprint(keras_model):
    """Digest of every value of the current weights (changes when they are trained or loaded)."""
    h = hashlib.blake2b(digest_size=16)
    for w in keras_model.weights:
        h.update(np.ascontiguousarray(np.asarray(w)).tobytes())
    return h.hexdigest()
