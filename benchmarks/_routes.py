"""The README's two training routes on one stack, as the real-data and curved-sample benchmarks train them.

``degradation='auto'`` (calibrated on the stack), extra depth 10-40 um, 4 degraded copies; the 3D
route on 3D patches (8, 64, 64), 128 per copy, batch 4, CSBDeep's default 3D U-Net; the per-plane
route on 2D patches (64, 64) of every plane, about 3072 in all, batch 16, a U-Net of depth 3 and
width 32 (the demo's). Learning rate 4e-4.
"""
import os
import time

import numpy as np

EXTRA_DEPTH = (10, 40)
N_DEGRADATIONS = 4


def train_readme_route(route, stack, axes, *, voxel_size, surface, epochs, steps, seed, basedir, name,
                       depth_map=None):
    """Train ``route`` ('3d' or 'per-plane') on ``stack``; returns (model, data settings, history dict, seconds)."""
    import keras
    from csbdeep.io import load_training_data

    from deepcontrast.data import DegradedRawData, create_patches, per_slice
    from deepcontrast.models import Config, DeepContrast

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    raw = DegradedRawData.from_arrays([stack], axes, "auto", EXTRA_DEPTH, n_degradations=N_DEGRADATIONS,
                                      voxel_size=voxel_size, surface=surface, depth_map=depth_map, rng=rng)
    npz = os.path.join(basedir, f"{name}.npz")
    if route == "3d":
        create_patches(raw, (8, 64, 64), 128, save_file=npz, verbose=False, rng=rng)
        net = dict(train_batch_size=4)
    else:
        n_per = max(1, (3072 // N_DEGRADATIONS) // stack.shape[0])
        create_patches(per_slice(raw), (64, 64), n_per, save_file=npz, verbose=False, rng=rng)
        net = dict(unet_n_depth=3, unet_n_first=32, train_batch_size=16, normalize_per_slice=True)
    (X, Y), val, data_axes = load_training_data(npz, validation_split=0.1, verbose=False)
    config = Config(data_axes, 1, 1, train_epochs=epochs, train_steps_per_epoch=steps, train_learning_rate=4e-4,
                    degradation_settings=raw.settings, train_tensorboard=False, **net)
    model = DeepContrast(config, name, basedir=basedir)
    t = time.time()
    history = model.train(X, Y, validation_data=val, rng=seed)
    return model, raw.settings, history.history, time.time() - t
