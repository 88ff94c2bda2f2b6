"""Choosing a model in the widgets: a CSBDeep/DeepContrast model folder (or the Fiji zip inside one)."""
from pathlib import Path

__all__ = ["load_model", "check_model_fits"]


def load_model(path):
    """Load a :class:`~deepcontrast.DeepContrast` model from its folder.

    Parameters
    ----------
    path : str or Path
        The model folder (``config.json`` + ``weights_*.h5``), a file inside it (e.g.
        ``config.json``), or a Fiji export zip that still sits in its model folder (as
        ``export_TF()`` writes ``TF_SavedModel.zip``): the folder is loaded then.

    Returns
    -------
    deepcontrast.DeepContrast

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``, or no model folder (config.json and weights) there.
    ValueError
        A zip away from its model folder (it holds a frozen TensorFlow 1 graph for Fiji, not
        Keras weights), or a corrupt config or weights file.
    """
    path = Path(path).expanduser()
    if str(path) in ("", ".") or not path.exists():
        raise FileNotFoundError(f"model {str(path)!r} does not exist; choose a model folder "
                                "(the one holding config.json and weights_best.h5)")
    folder = path if path.is_dir() else path.parent
    if path.suffix == ".zip" and not (folder / "config.json").exists():
        raise ValueError(f"{path.name} is an exported model (a frozen graph for Fiji/bioimage.io) without its "
                         "model folder; choose the model folder it was exported from (config.json + weights_*.h5)")
    from ..models import DeepContrast

    try:
        return DeepContrast(None, folder.name, str(folder.parent))
    except FileNotFoundError:
        raise
    except Exception as e:  # corrupt JSON/HDF5 or a config of another kind of model
        raise ValueError(f"cannot load the model in {folder}: {type(e).__name__}: {e}") from None


def check_model_fits(model, axes):
    """Raise a ValueError naming the problem when ``model`` cannot restore an image with ``axes``.

    A 2D model restores a stack plane by plane; a 3D model needs a Z axis.
    """
    spatial = model.config.axes.replace("C", "")
    missing = [a for a in spatial if a not in axes]
    if missing:
        raise ValueError(f"the model is {len(spatial)}D ({spatial}) but the layer's axes {axes!r} have no "
                         f"{''.join(missing)}; use a {len(axes.replace('C', ''))}D model for this layer "
                         "or fix the axes")
    if model.config.n_channel_in > 1 and "C" not in axes:
        raise ValueError(f"the model expects {model.config.n_channel_in} channels but the layer has no C axis")
