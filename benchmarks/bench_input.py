"""Fraction of training step time spent waiting on data.

Trains the demo's 2D network (same weights, same data) epoch by epoch, interleaved:

- ``pipeline``: what ``DeepContrast.train`` feeds Keras (CSBDeep's ``DataWrapper``: shuffled
  batches drawn in Python, through the input pipeline ``train`` uses);
- ``in-memory``: one fixed batch already in a ``tf.data`` pipeline (no data cost at all).

The waiting fraction is ``1 - t(in-memory) / t(pipeline)`` of the median step times (the time
from a step's start to its end as Keras reports them, which includes fetching the batch; the
first step of every epoch, which may trace the graph, is left out). Also prints the cost of drawing one batch alone relative
to a step (the fraction a pipeline without prefetching would wait).

Usage: python benchmarks/bench_input.py [--epochs 4] [--steps 8] [--precision auto]
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


class _EpochStepTimer:
    """Keras callback: time from the end of one step to the end of the next (fetch + compute)."""

    def __new__(cls):
        from keras.callbacks import Callback

        class Timer(Callback):
            def on_train_begin(self, logs=None):
                self.ends = []

            def on_train_batch_end(self, batch, logs=None):
                self.ends.append(time.perf_counter())

            def step_gaps(self):
                return list(np.diff(self.ends))  # the first step (tracing, first fetch) has no gap

        return Timer()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args(argv)

    import keras
    import tensorflow as tf
    from csbdeep.internals.train import DataWrapper

    from deepcontrast.models import Config, DeepContrast

    rng = np.random.default_rng(0)
    X = rng.random((1024, 64, 64, 1), dtype=np.float32)
    Y = X + 0.1 * rng.random(X.shape, dtype=np.float32)
    val = (X[:16], Y[:16])
    bs = 16
    keras.utils.set_random_seed(0)
    model = DeepContrast(Config("YX", unet_n_depth=3, unet_n_first=32, unet_kern_size=5, train_batch_size=bs,
                                train_tensorboard=False, precision=args.precision), basedir=None)
    fixed = tf.data.Dataset.from_tensors((X[:bs], Y[:bs])).repeat()

    def pipeline():
        model.train(X, Y, val, epochs=1, steps_per_epoch=args.steps)

    def in_memory():
        model.keras_model.fit(fixed, validation_data=val, epochs=1, steps_per_epoch=args.steps,
                              callbacks=model.callbacks, verbose=0)

    model.prepare_for_training()
    timer = _EpochStepTimer()
    model.callbacks.append(timer)
    times = {"pipeline": [], "in-memory": []}
    for _ in range(args.epochs):
        for k, fn in (("pipeline", pipeline), ("in-memory", in_memory)):
            fn()
            times[k] += timer.step_gaps()
    t_pipe, t_mem = (float(np.median(times[k])) for k in ("pipeline", "in-memory"))
    data = DataWrapper(X, Y, bs, length=200)
    t = time.perf_counter()
    for i in range(200):
        data[i]
    t_batch = (time.perf_counter() - t) / 200
    print(f"demo 2D net, batch {bs} of 64x64, precision {model.precision}, {args.steps} steps/epoch, "
          f"median of {len(times['pipeline'])} / {len(times['in-memory'])} steps, {args.epochs} epochs interleaved")
    print(f"  step time, training pipeline : {1e3 * t_pipe:8.1f} ms")
    print(f"  step time, batch in memory   : {1e3 * t_mem:8.1f} ms")
    print(f"  waiting fraction 1 - mem/pipe: {1 - t_mem / t_pipe:+8.3f}")
    print(f"  drawing one batch alone      : {1e3 * t_batch:8.3f} ms ({t_batch / t_pipe:.4f} of a step)")


if __name__ == "__main__":
    main()
