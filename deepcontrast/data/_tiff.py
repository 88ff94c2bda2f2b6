"""Reading raw TIFFs with errors that name the file."""
import tifffile


def tiff_shape(path, axes):
    """Shape of the first series of a TIFF from its header; errors name the file."""
    try:
        with tifffile.TiffFile(path) as tif:
            shape = tuple(tif.series[0].shape)
    except Exception as e:
        raise ValueError(f"cannot read {path} as a TIFF ({type(e).__name__}: {e}); remove or replace it") from None
    if len(shape) != len(axes):
        raise ValueError(
            f"image {path} has {len(shape)} dimensions {shape}, but axes {axes!r} have {len(axes)}; "
            "give the axes of the images (e.g. 'YX' for 2D, 'ZYX' for stacks) or remove this file"
        )
    return shape


def read_tiff(path, shape):
    try:
        img = tifffile.imread(path)
    except Exception as e:
        raise ValueError(f"cannot read {path} as a TIFF ({type(e).__name__}: {e}); remove or replace it") from None
    if img.shape != tuple(shape):
        raise ValueError(f"image {path} has shape {img.shape}, but its header said {tuple(shape)}; re-save it")
    return img
