"""Random sub-volumes of big volumes for training data, each with its true depth."""
import numpy as np

__all__ = ["sample_subvolumes"]


def sample_subvolumes(volumes, names, axes, size, n_per_volume, voxel_size, surface, seed):
    """Loaders of ``n_per_volume`` random sub-volumes of each volume, and their depth offsets (um).

    The offset is the depth of a sub-volume's surface-most slice below the volume's surface
    (its Z offset, from the end ``surface`` names, times the Z voxel size).
    """
    try:
        size = tuple(int(v) for v in size)
        if len(size) != len(axes) or min(size) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"subvolume_size must be {len(axes)} integers >= 1 (one per axis of {axes!r}), "
                         f"got {size!r}") from None
    if isinstance(n_per_volume, bool) or not isinstance(n_per_volume, (int, np.integer)) or n_per_volume < 1:
        raise ValueError(f"n_subvolumes must be an integer >= 1, got {n_per_volume!r}")
    g = np.random.default_rng([seed, 1])
    vz = 1.0 if voxel_size is None or "Z" not in axes else voxel_size[[a for a in axes if a in "ZYX"].index("Z")]
    loaders, offsets = [], []
    for vol, name in zip(volumes, names):
        if any(s > n for s, n in zip(size, vol.shape)):
            raise ValueError(f"subvolume_size {size} is larger than {name} of shape {vol.shape}; use at most "
                             f"{tuple(min(s, n) for s, n in zip(size, vol.shape))}")
        for _ in range(n_per_volume):
            start = [int(g.integers(0, n - s + 1)) for s, n in zip(size, vol.shape)]
            region = tuple(slice(a, a + s) for a, s in zip(start, size))
            loaders.append((f"{name} {_fmt_region(region)}", (lambda vol=vol, region=region: vol.read(region)), size))
            if "Z" in axes:
                k = axes.index("Z")
                z = start[k] if surface == "first" else vol.shape[k] - start[k] - size[k]
                offsets.append(float(z * vz))
            else:
                offsets.append(0.0)
    return loaders, offsets


def _fmt_region(region):
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in region) + "]"
