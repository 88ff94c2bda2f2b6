"""Training pairs from raw images alone: :class:`DegradedRawData` (patches: :mod:`.patches`)."""
import logging
from pathlib import Path

import numpy as np
from csbdeep.data import RawData
from csbdeep.utils import axes_check_and_normalize
from tqdm.auto import tqdm

from ..internals.axes import check_image_axes
from ..degradation import DeepTissueDegradation
from ..internals.tiff import read_tiff, tiff_shape
from .depthmaps import DepthPlan
from ..internals.checks import check_depth, check_extra_depth
from .transform import (as_degradation, check_n_degradations, check_voxel_size, degrade_pairs, distortions_name,
                        warn_if_noise_free)
from .normalize import normalize_planes as normalize_planes_of
from .subvolumes import sample_subvolumes
from .volume import open_volume

__all__ = ["DegradedRawData"]

log = logging.getLogger(__name__)

#: at most this many images are read for ``degradation='auto'`` in :meth:`DegradedRawData.from_folder`
N_CALIBRATION_IMAGES = 8


class DegradedRawData(RawData):
    """Training pairs ``(degraded raw, raw)`` made from raw images alone, as a csbdeep ``RawData``.

    DeepContrast has no clean targets: the raw image is the target and the forward model
    (:class:`~deepcontrast.DeepTissueDegradation`) makes the input by pushing it
    ``extra_depth`` micrometres deeper. The generator yields ``(degraded, raw, axes, None)``
    tuples (for stacks with a Z axis, every plane of both normalized on its own; see
    ``normalize_planes``), so :func:`csbdeep.data.create_patches`, ``save_training_data`` and
    ``load_training_data(..., validation_split=...)`` work unchanged. Build it with
    :meth:`from_folder` or :meth:`from_arrays`.

    Attributes
    ----------
    generator, size, description
        As in :class:`csbdeep.data.RawData`; ``size`` counts degraded copies
        (images x ``n_degradations``).
    settings : dict
        JSON-serializable record of how the pairs are made: ``degradation`` (parameters),
        ``extra_depth`` (``[low, high]``), ``n_degradations``, ``voxel_size``, ``surface``,
        ``depth``, ``axes``, ``calibration`` (the calibration report for
        ``degradation='auto'``, else None) and ``depth_map`` (how per-voxel depth maps were
        made, e.g. ``{'source': "surface_depth(surface='first') of each image", ...}``, or None) and
        ``normalize_planes`` (True when every plane of the pairs was normalized on its own).
        :func:`deepcontrast.data.create_patches` saves it
        next to the training data so the model can store it.
    degradation : DeepTissueDegradation
        The forward model used.
    names : list of str
        The images (file paths, or ``'image <i>'`` for arrays).
    shapes : list of tuple
        Their shapes, known before any pixel is read (from the TIFF headers).
    loaders : list of callable
        One function per image that reads it (a file is read anew at each call).
    """

    @classmethod
    def from_folder(cls, basepath, source_dirs, axes, degradation, extra_depth, *, n_degradations=1, voxel_size=None,
                    surface="first", depth=0.0, pattern="*.tif*", subvolume_size=None, n_subvolumes=1, rng=None,
                    microscope="auto", depth_map=None, normalize_planes=True):
        """Pairs from the raw TIFF images in ``basepath/<source_dir>/<pattern>``.

        Images are read from disk one at a time while the generator runs (never all at once,
        and never all degraded copies); a progress bar counts images done. Every file is
        checked up front from its TIFF header (readable, dimensions match ``axes``), so a bad
        file fails before any work is done.

        Parameters
        ----------
        basepath : str or pathlib.Path
            Base folder.
        source_dirs : list of str
            Folders (relative to ``basepath``, or absolute) holding raw images.
        axes : str
            Axes of every image, e.g. ``'YX'``, ``'ZYX'``, ``'CZYX'``.
        degradation : DeepTissueDegradation, dict or 'auto'
            The forward model, its parameters, or ``'auto'`` to estimate it (noise level etc.)
            with ``DeepTissueDegradation.calibrate`` on the first (up to
            ``N_CALIBRATION_IMAGES`` = 8) images, in sorted order.
        extra_depth : float or (float, float)
            Additional depth (um), or a ``(low, high)`` range sampled uniformly per copy.
        n_degradations : int
            Degraded copies per raw image, each with its own extra depth and noise.
        voxel_size : sequence of float or None
            Micrometres per pixel for each spatial axis of ``axes`` (default 1).
        surface : {'first', 'last', 'auto', 'auto-last'}
            Which end of Z is the tissue surface; 'auto' ('auto-last'): the light enters at
            the first (last) slice and each image is degraded at each voxel's own depth below
            the tissue's surface found in it (:func:`deepcontrast.depth.surface_depth`), for
            curved samples (spheroids, organoids, embryos). Patches then come from those
            degraded images as from any other.
        depth : float
            Depth (um) of the surface-most slice (3D) or of the plane (2D). For 2D images it
            matters: the blur increment grows with the depth the image was taken at.
        pattern : str
            Glob pattern of the images in each folder: TIFF files, or zarr / OME-Zarr folders
            (e.g. ``pattern='*.zarr'``).
        subvolume_size : sequence of int or None
            Degrade ``n_subvolumes`` sub-volumes of this size per image (one entry per axis),
            read lazily at random positions (TIFFs through ``tifffile``'s zarr store), each at its
            true depth (the depth of its surface-most slice from its offset along Z), instead
            of reading and degrading whole images: memory is bounded by the sub-volume size.
        n_subvolumes : int
            Sub-volumes per image (with ``subvolume_size``).
        rng : None, int or numpy.random.Generator
            Seeds the extra-depth draws, the noise and the sub-volume positions: the same seed
            gives the same pairs, and iterating the generator again gives the same pairs too.
        microscope : {'auto', 'point-scanning', 'widefield'}
            With ``degradation='auto'``: how the images were acquired, when you know it
            (widefield, spinning disk, light sheet: ``'widefield'``), passed to the calibration
            (see :func:`deepcontrast.calibration.calibrate`); 'auto' lets the data decide.
            It does not make thin widefield samples restorable: their out-of-focus blur does
            not come from depth (see the README, "What it does not do").

        depth_map : numpy.ndarray, list of numpy.ndarray or None
            Your own depth (um) per voxel, shaped like the spatial axes of the images: one map
            for every image, or a list with one per image (in sorted file order); ``surface``
            then says which end faces the objective. The settings record how the maps were
            made (``depth_map``), not the arrays. Not with ``subvolume_size``.
        normalize_planes : bool
            For images with a Z axis: map every YX plane of each degraded image and of its raw
            target to 0-1 on its own percentiles (2 and 99.8,
            :func:`deepcontrast.data.normalize.normalize_planes`) before patches are cut, as
            the per-plane route does by splitting stacks into planes. Deep, attenuated planes
            then weigh as much in training as shallow ones and the patch filter finds
            foreground at every depth; the model restores stacks normalized the same way
            (``Config(normalize_per_slice=True)``, chosen from the settings). On the built-in
            sample this lifts the 3D route's deepest third by 0.5-0.7 dB (README, "Measured
            figures"). ``False``: whole-stack normalization, as before.

        Returns
        -------
        DegradedRawData

        Raises
        ------
        FileNotFoundError
            If a folder does not exist or holds no file matching ``pattern``.
        ValueError
            If a file is not a readable TIFF, its dimensions do not match ``axes``, or an
            argument is invalid.

        Examples
        --------
        >>> from deepcontrast import DeepTissueDegradation
        >>> raw_data = DegradedRawData.from_folder('data', ['raw'], 'ZYX', DeepTissueDegradation(photons=50),
        ...                                        (10, 40), n_degradations=2, voxel_size=(2, 0.5, 0.5),
        ...                                        rng=0)  # doctest: +SKIP
        >>> X, Y, XY_axes = create_patches(raw_data, (16, 64, 64), 128,
        ...                                save_file='data/my_training_data.npz')  # doctest: +SKIP
        """
        axes = _check_axes(axes)
        if isinstance(source_dirs, (str, Path)):
            source_dirs = [source_dirs]
        files = []
        for sd in source_dirs:
            folder = Path(basepath) / sd
            if not folder.is_dir():
                raise FileNotFoundError(f"raw image folder {folder} does not exist; check basepath and source_dirs")
            found = sorted(f for f in folder.glob(pattern) if f.is_file() or f.name.lower().endswith(".zarr"))
            if not found:
                raise FileNotFoundError(
                    f"no files matching pattern {pattern!r} in folder {folder}; check the folder or pass another "
                    "pattern (e.g. pattern='*.tif')"
                )
            files.extend(found)
        loaders = []
        for f in files:
            if f.is_dir() or subvolume_size is not None:
                vol = _checked_volume(f, axes, str(f))
                loaders.append((str(f), (lambda vol=vol: vol.read(())), vol.shape))
            else:
                shape = tiff_shape(f, axes)
                loaders.append((str(f), (lambda f=f: read_tiff(f)), shape))
        desc = f"{basepath}: sources={[str(s) for s in source_dirs]}, axes='{axes}', pattern='{pattern}'"
        sub = (subvolume_size, n_subvolumes, [open_volume(f) for f in files] if subvolume_size is not None else None)
        return cls._build(loaders, axes, degradation, extra_depth, n_degradations, voxel_size, surface, depth, rng,
                          microscope, desc, _first_images(loaders), sub, depth_map, normalize_planes)

    @classmethod
    def from_arrays(cls, images, axes, degradation, extra_depth, *, n_degradations=1, voxel_size=None,
                    surface="first", depth=0.0, subvolume_size=None, n_subvolumes=1, rng=None, microscope="auto",
                    depth_map=None, normalize_planes=True):
        """Pairs from raw images in memory or read lazily (zarr, dask, OME-Zarr or TIFF paths).

        Parameters
        ----------
        images : array or sequence of arrays
            One raw image (``ndim == len(axes)``) or several (possibly of different shapes): numpy
            arrays, or volumes read lazily (``zarr``/``dask`` arrays, paths of zarr/OME-Zarr
            folders or TIFFs), which are read only while the generator runs.
        axes, degradation, extra_depth, n_degradations, voxel_size, surface, depth, subvolume_size, n_subvolumes, rng, microscope, depth_map, normalize_planes
            As in :meth:`from_folder` (``'auto'`` calibrates on all images; on a lazily read
            volume that means reading it, so calibrate on a part of it instead).

        Returns
        -------
        DegradedRawData

        Raises
        ------
        ValueError
            If an image does not match ``axes`` (its index and shape are named), holds NaN/Inf,
            or an argument is invalid.

        Examples
        --------
        >>> from deepcontrast import DeepTissueDegradation
        >>> from deepcontrast.data import synthetic_tissue, create_patches
        >>> observed, clean = synthetic_tissue((16, 64, 64))
        >>> raw_data = DegradedRawData.from_arrays([observed], 'ZYX', DeepTissueDegradation(photons=50),
        ...                                        (10, 40), voxel_size=(2, 0.5, 0.5), rng=0)
        >>> X, Y, XY_axes = create_patches(raw_data, (8, 32, 32), 4, verbose=False)
        >>> X.shape, XY_axes
        ((4, 1, 8, 32, 32), 'SCZYX')
        """
        axes = _check_axes(axes)
        if isinstance(images, (str, Path)) or (hasattr(images, "shape") and len(images.shape) == len(axes)):
            images = [images]
        images = list(images)
        if not images:
            raise ValueError("images is empty; give at least one raw image")
        loaders, volumes = [], []
        for i, img in enumerate(images):
            if isinstance(img, np.ndarray) or not (hasattr(img, "shape") or isinstance(img, (str, Path))):
                img = check_image_axes(img, axes, name=f"image {i}")[0]
                loaders.append((f"image {i}", (lambda img=img: img), img.shape))
                volumes.append(open_volume(img))
            else:
                vol = _checked_volume(img, axes, f"image {i}")
                loaders.append((f"image {i} ({vol.name})", (lambda vol=vol: vol.read(())), vol.shape))
                volumes.append(vol)
        return cls._build(loaders, axes, degradation, extra_depth, n_degradations, voxel_size, surface, depth, rng,
                          microscope, "arrays", lambda: [load() for _, load, _ in loaders],
                          (subvolume_size, n_subvolumes, volumes), depth_map, normalize_planes)

    @classmethod
    def _build(cls, loaders, axes, degradation, extra_depth, n_degradations, voxel_size, surface, depth, rng,
              microscope, description, calibration_images, sub=(None, 1, None), depth_map=None, normalize_planes=True):
        lo, hi = check_extra_depth(extra_depth)
        n = check_n_degradations(n_degradations)
        if not isinstance(normalize_planes, (bool, np.bool_)):
            raise ValueError(f"normalize_planes must be True or False, got {normalize_planes!r}")
        per_plane = bool(normalize_planes) and "Z" in axes
        depth = check_depth(depth)
        plan = DepthPlan(surface, depth, depth_map, len(loaders), sub[0] is not None)
        vs = check_voxel_size(axes, voxel_size)
        deg, calibration = _resolve_degradation(degradation, microscope, calibration_images, axes, vs, plan)
        seed = int(np.random.default_rng(rng).integers(2**63))  # as deep_tissue_distortions seeds itself
        offsets = [0.0] * len(loaders)
        if sub[0] is not None:
            loaders, offsets = sample_subvolumes(sub[2], [name for name, _, _ in loaders], axes, sub[0], sub[1],
                                                 vs, surface, seed)

        def _raw_pairs():
            for i, ((name, load, _), offset) in enumerate(tqdm(list(zip(loaders, offsets)), desc="degrading raw images",
                                                               unit="image", leave=False)):
                img = load()
                yield img, img, axes, None, plan.for_image(i, img, axes, vs, offset)

        def _gen():
            # re-raise errors from the forward model with the image they concern
            it = degrade_pairs(deg, _raw_pairs(), (lo, hi), n, vs, plan.end, seed)
            names = iter([name for name, _, _ in loaders for _ in range(n)])
            target = (None, None)  # (raw target, its planes normalized): the n copies of an image share it
            while True:
                name = next(names, "?")
                try:
                    item = next(it)
                except StopIteration:
                    return
                except ValueError as e:
                    raise ValueError(f"{name}: {e}") from None
                if per_plane:
                    x, y, ax, mask = item
                    if target[0] is not y:
                        target = (y, normalize_planes_of(y, ax))
                    item = (normalize_planes_of(x, ax), target[1], ax, mask)
                yield item

        self = cls(_gen, len(loaders) * n, f"{description}; {distortions_name(lo, hi)} x {n}")
        self.degradation = deg
        self.names = [name for name, _, _ in loaders]
        self.shapes = [tuple(shape) for _, _, shape in loaders]
        self.loaders = [load for _, load, _ in loaders]  # per_slice reads them to find planes without structure
        self.settings = {
            "degradation": deg.to_dict(),
            "extra_depth": [lo, hi],
            "n_degradations": n,
            "voxel_size": vs,
            "surface": surface,
            "depth": depth,
            "axes": axes,
            "calibration": calibration,
            "depth_map": plan.record(),
            "normalize_planes": per_plane,
        }
        if sub[0] is not None:
            self.settings.update(subvolume_size=[int(v) for v in sub[0]], n_subvolumes=int(sub[1]))
        return self


def _resolve_degradation(degradation, microscope, calibration_images, axes, vs, plan):
    """The training degradation (calibrated on the images for 'auto') and the calibration report (or None)."""
    deg = as_degradation(degradation)
    if microscope != "auto" and deg != "auto":
        raise ValueError(f"microscope={microscope!r} is used only to calibrate the forward model; pass "
                         "degradation='auto' with it, or drop it (a given degradation already says out_of_focus)")
    calibration = None
    if deg == "auto":
        images = calibration_images()
        depth, surface = plan.calibration_depth(len(images))
        deg, report = DeepTissueDegradation.calibrate(images, axes, voxel_size=vs, surface=surface, depth=depth,
                                                      microscope=microscope)
        calibration = report.to_dict()
        log.info("calibrated degradation: %s", deg)
    warn_if_noise_free(deg)
    return deg, calibration


# -- helpers --------------------------------------------------------------------------------
def _checked_volume(source, axes, name):
    vol = open_volume(source, name=name if not isinstance(source, (str, Path)) else None)
    if len(vol.shape) != len(axes):
        raise ValueError(f"{vol.name} has {len(vol.shape)} dimensions {vol.shape}, but axes {axes!r} have "
                         f"{len(axes)}; give the axes of the images (e.g. 'ZYX') or remove it")
    return vol


def _first_images(loaders):
    def calibration_images():
        return [load() for _, load, _ in loaders[:N_CALIBRATION_IMAGES]]
    return calibration_images



def _check_axes(axes):
    try:
        axes = axes_check_and_normalize(axes)
    except ValueError as e:
        raise ValueError(f"invalid axes {axes!r}: {e} Use e.g. 'YX' or 'ZYX'.") from None
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain both Y and X")
    return axes
