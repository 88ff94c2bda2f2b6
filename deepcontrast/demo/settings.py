"""Settings of the demo: the default run and the ``--quick`` run."""
import copy

__all__ = ["demo_settings"]

#: The default run (450 training steps; 3.7 minutes on an otherwise idle 2-core CPU with bfloat16,
#: 7.3 in float32, see the README). A 2D network trained on XY slices of the stack (each slice
#: degraded at its own depth) learns in a fraction of the time a 3D network needs on this
#: anisotropic stack (2 um between slices, 0.5 um pixels): on a 48x256x256 synthetic stack a
#: default 3D CARE net gained +2.6 dB after 450 steps (about 6.5 minutes) and nothing after 200,
#: a 2D net on the slices +2.1 dB in under 2 minutes. The U-Net is 3 levels deep (not CSBDeep's 2)
#: so its receptive field covers the scattered-light halo of the deepest slices (sigma ~7 um =
#: 14 px at 80 um), at similar cost per step; when that depth was chosen it gained +2.38 dB over
#: the raw in the deepest third against +2.22 dB for 2 levels (on a sample drawn with another seed).
DEFAULT = dict(
    shape=(48, 256, 256),
    voxel_size=(2.0, 0.5, 0.5),
    photons=50.0,
    extra_depth=(10.0, 40.0),
    n_degradations=4,
    slices_2d=True,
    patch_size=(64, 64),
    n_patches_per_image=3072,
    validation_split=0.1,
    unet_n_depth=3,
    unet_n_first=32,
    train_batch_size=16,
    train_epochs=15,
    train_steps_per_epoch=30,
    train_learning_rate=0.0004,
    n_iter=3,
)

#: ``--quick``: every step, on a small sample with a small network (well under 2 minutes).
QUICK = dict(
    DEFAULT,
    shape=(16, 96, 96),
    n_degradations=2,
    patch_size=(32, 32),
    n_patches_per_image=256,
    unet_n_depth=2,
    unet_n_first=8,
    train_batch_size=16,
    train_epochs=5,
    train_steps_per_epoch=20,
    n_iter=2,
)


def demo_settings(quick=False):
    """The demo's settings as a new dict (safe to modify).

    Parameters
    ----------
    quick : bool
        Settings of ``deepcontrast demo --quick`` (small sample, small network, few steps)
        instead of the default run.

    Returns
    -------
    dict
        ``shape`` and ``voxel_size`` of the synthetic sample, ``photons`` of its noise,
        ``extra_depth`` range and ``n_degradations`` of the training data, ``slices_2d``
        (train a 2D network on XY slices), ``patch_size``, ``n_patches_per_image`` (in total per
        degraded stack), ``validation_split``, the U-Net and training settings (``unet_*``,
        ``train_*``) and ``n_iter`` (iterations evaluated).

    Examples
    --------
    >>> from deepcontrast.demo import demo_settings
    >>> demo_settings(quick=True)['shape']
    (16, 96, 96)
    """
    return copy.deepcopy(QUICK if quick else DEFAULT)
