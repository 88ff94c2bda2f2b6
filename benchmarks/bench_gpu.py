"""Training and prediction speed of float32 / bfloat16 / float16 on this machine (CPU or GPU).

One run, same data, same seed, same initial weights for every precision:

- the demo's 2D network (U-Net depth 3, 32 first filters, per-plane normalization) trained on
  per-plane patches of the synthetic tissue stack, and a 3D network (CSBDeep's default 3D
  U-Net) trained on 3D patches;
- training: steps/s (median step time, without the first step of each epoch, which may trace
  the graph; epochs of all precisions interleaved so load changes of a shared machine hit all
  alike), the final
  validation loss and the deepest-third PSNR of iteration 1 against the clean truth, each
  as a delta to float32;
- prediction: Mvoxel/s of the float32-trained network applied to the stack in each precision
  (interleaved, best of ``--repeat``) and the deviation of its output from the float32 output
  (PSNR in dB over the float32 output's range, and max |diff| / range).

Prints the device, what ``precision='auto'`` chooses here, and the ratios to float32. Runs
unchanged on a GPU machine: select the GPU with ``CUDA_VISIBLE_DEVICES``; memory growth is
switched on and XLA off (not measured faster here). ``--small`` (default on a CPU-only
machine: under 5 minutes) uses a small stack and few steps; ``--full`` uses the demo's sample.

Usage: python benchmarks/bench_gpu.py [--small | --full] [--precisions float32,bfloat16,float16]
       [--repeat 2] [--skip-3d] [--no-train]
"""
import argparse
import logging
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _timing import best_times  # noqa: E402  (benchmarks/, run as a script)

SIZES = {
    # stack, 2D patch, patches per image, epochs, steps/epoch, batch; 3D patch, 3D batch
    "small": dict(shape=(16, 128, 128), patch=(64, 64), n_patches=384, epochs=3, steps=4, batch=16,
                  patch3d=(16, 32, 32), batch3d=4),
    "full": dict(shape=(48, 256, 256), patch=(64, 64), n_patches=3072, epochs=5, steps=30, batch=16,
                 patch3d=(16, 64, 64), batch3d=4),
}


def setup_tensorflow():
    """Memory growth on every visible GPU, XLA off; returns a one-line device description."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:
        tf.config.experimental.set_memory_growth(g, True)
    tf.config.optimizer.set_jit(False)
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        return f"GPU: {', '.join(names)} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})"
    from deepcontrast.models.precision import _cpu_flags

    flags = _cpu_flags()
    bf16 = sorted(f for f in flags if "bf16" in f or f.startswith("amx"))
    return f"CPU only, {os.cpu_count()} logical cores, bfloat16 flags: {', '.join(bf16) or 'none'}"


def make_data(sz, tmp, rng=0):
    """Synthetic tissue stack and its training patches: 2D per-plane and 3D."""
    from csbdeep.io import load_training_data

    from deepcontrast.data import synthetic_tissue
    from deepcontrast.degradation import DeepTissueDegradation
    from deepcontrast.demo.settings import demo_settings
    from deepcontrast.demo.steps import make_training_data

    s = demo_settings()
    deg = DeepTissueDegradation(photons=s["photons"])
    image, clean = synthetic_tissue(sz["shape"], voxel_size=tuple(s["voxel_size"]), degradation=deg, rng=rng)
    sample = SimpleNamespace(image=image, clean=clean, axes="ZYX", voxel_size=tuple(s["voxel_size"]),
                             surface="first", depth=0.0, degradation=deg, microscope="auto")
    data = {}
    for kind, slices_2d, patch in (("2D", True, sz["patch"]), ("3D", False, sz["patch3d"][1:])):
        s.update(slices_2d=slices_2d, patch_size=patch, n_patches_per_image=sz["n_patches"])
        if kind == "3D":
            s.update(n_patches_per_image=max(8, sz["n_patches"] // 16))
        d = Path(tmp) / kind
        d.mkdir()
        made = make_training_data(s, sample, d, rng)
        (X, Y), (Xv, Yv), axes = load_training_data(made.file, validation_split=0.1, verbose=False)
        data[kind] = SimpleNamespace(X=X, Y=Y, val=(Xv, Yv), axes=axes, settings=made.settings)
    return sample, data


def make_models(kind, d, precisions, sz, seed=0):
    """One model per precision, all with the same initial weights."""
    import keras

    from deepcontrast.models import Config, DeepContrast

    net = (dict(unet_n_depth=3, unet_n_first=32, unet_kern_size=5, train_batch_size=sz["batch"])
           if kind == "2D" else dict(unet_n_depth=2, unet_n_first=32, unet_kern_size=3, train_batch_size=sz["batch3d"]))
    c = d.axes.index("C")
    models = {}
    for p in precisions:
        keras.utils.set_random_seed(seed)
        config = Config(d.axes.replace("S", "").replace("C", "") + "C", d.X.shape[c], d.Y.shape[c],
                        degradation_settings=d.settings, precision=p,  # settings decide normalize_per_slice
                        train_tensorboard=False, train_learning_rate=0.0004, **net)
        models[p] = DeepContrast(config, basedir=None)
    w = models[precisions[0]].keras_model.get_weights()
    for m in models.values():
        m.keras_model.set_weights(w)
    return models


def step_timer():
    """Keras callback recording the duration of every training step but the first of each fit."""
    from keras.callbacks import Callback

    class StepTimer(Callback):
        times = []

        def on_train_begin(self, logs=None):
            self._first = True

        def on_train_batch_begin(self, batch, logs=None):
            self._t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if not self._first:  # the first step of a fit may trace the graph
                self.times.append(time.perf_counter() - self._t)
            self._first = False

    return StepTimer()


def train_round_robin(models, d, sz):
    """Train all models epoch by epoch, interleaved; returns steps/s and final val_loss per precision.

    Steps/s from the median step time (steps after the first of each epoch's fit), so neither
    graph tracing nor validation is counted.
    """
    timers, last = {}, {}
    for p, m in models.items():
        m.prepare_for_training()
        timers[p] = step_timer()
        timers[p].times = []
        m.callbacks.append(timers[p])
    for _ in range(sz["epochs"]):
        for p, m in models.items():
            keras_seed(1)
            h = m.train(d.X, d.Y, d.val, epochs=1, steps_per_epoch=sz["steps"])
            last[p] = float(h.history["val_loss"][-1])
    return {p: 1 / float(np.median(t.times)) for p, t in timers.items()}, last


def keras_seed(seed):
    import keras

    keras.utils.set_random_seed(seed)



def deepest_third_psnr(pred, clean):
    from deepcontrast.metrics.reference import psnr

    z = pred.shape[0]
    return psnr(pred[z - z // 3:], clean[z - z // 3:])


def vs_reference(y, ref):
    rng = float(ref.max() - ref.min())
    mse = float(np.mean((y - ref) ** 2))
    db = float("inf") if mse == 0 else 10 * np.log10(rng ** 2 / mse)
    return db, float(np.abs(y - ref).max() / rng)


def bench(kind, sample, d, precisions, sz, repeat, train=True):
    models = make_models(kind, d, precisions, sz)
    print(f"\n{kind} network ({'demo 2D U-Net, per-plane' if kind == '2D' else 'CSBDeep default 3D U-Net'}), "
          + (f"{len(d.X)} patches {d.X.shape[1:-1]}, {sz['epochs']} epochs x {sz['steps']} steps "
             f"of batch {models[precisions[0]].config.train_batch_size}" if train else "untrained (--no-train)"))
    nan = {p: float("nan") for p in precisions}
    steps, val = train_round_robin(models, d, sz) if train else (nan, nan)
    quality = ({p: deepest_third_psnr(m.predict(sample.image, "ZYX"), sample.clean) for p, m in models.items()}
               if train else nan)
    ref = models["float32"] if "float32" in models else models[precisions[0]]
    fns = {p: (lambda p=p: ref.predict(sample.image, "ZYX", precision=p)) for p in precisions}
    t, y = best_times(fns, repeat)
    mvox = sample.image.size / 1e6
    base = precisions[0]
    print(f"  {'precision':10s} {'train steps/s':>14s} {'ratio':>6s} {'val_loss':>9s} {'dval':>7s} "
          f"{'PSNR deep3':>10s} {'dPSNR':>6s} {'pred Mvox/s':>11s} {'ratio':>6s} {'out PSNR':>8s} {'max/range':>9s}")
    for p in precisions:
        db, dev = vs_reference(y[p], y[base])
        print(f"  {p:10s} {steps[p]:14.3f} {steps[p] / steps[base]:6.2f} {val[p]:9.4f} "
              f"{100 * (val[p] / val[base] - 1):+6.1f}% {quality[p]:10.2f} {quality[p] - quality[base]:+6.2f} "
              f"{mvox / t[p]:11.3f} {t[base] / t[p]:6.2f} {db:8.1f} {dev:9.2e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--small", action="store_true", help="small stack, few steps (default without a GPU)")
    g.add_argument("--full", action="store_true", help="the demo's sample and more steps (default with a GPU)")
    ap.add_argument("--precisions", default="float32,bfloat16,float16")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-3d", action="store_true")
    ap.add_argument("--no-train", action="store_true", help="prediction only (freshly initialized networks)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("deepcontrast.models.precision").setLevel(logging.INFO)

    device = setup_tensorflow()
    from deepcontrast.models.precision import check_precision, resolve_precision

    precisions = [check_precision(p.strip()) for p in args.precisions.split(",")]
    import tensorflow as tf

    small = args.small or (not args.full and not tf.config.list_physical_devices("GPU"))
    sz = SIZES["small" if small else "full"]
    print(f"device: {device}")
    print(f"precision 'auto' here: {resolve_precision('auto')}")
    print(f"sizes: {'small' if small else 'full'}, stack {sz['shape']}; ratios are to {precisions[0]} in this run")
    with tempfile.TemporaryDirectory() as tmp:
        sample, data = make_data(sz, tmp)
    for kind in ("2D",) + (() if args.skip_3d else ("3D",)):
        bench(kind, sample, data[kind], precisions, sz, args.repeat, train=not args.no_train)


if __name__ == "__main__":
    main()
