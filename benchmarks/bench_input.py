"""Fraction of training step time spent waiting on data.

Trains the demo's 2D network (same weights, same data) epoch by epoch, interleaved, all three
with the same callbacks and progress bar:

- ``train``: ``DeepContrast.train`` (batches gathered and prefetched by ``tf.data``,
  :mod:`deepcontrast.models.training`);
- ``DataWrapper``: what CSBDeep's ``CARE.train`` feeds Keras (shuffled batches drawn by a
  Python generator, which Keras wraps in ``tf.data.Dataset.from_generator``);
- ``in-memory``: one fixed batch already in a ``tf.data`` pipeline (no data cost at all).

The waiting fraction of a pipeline is ``1 - t(in-memory) / t(pipeline)`` of the median step
times (end of one step to the end of the next, which includes fetching the batch; the first
step of every epoch, which may trace the graph, is left out). Also prints the cost of drawing
one batch alone relative to a step (the fraction a pipeline without prefetching would wait).

Usage: python benchmarks/bench_input.py [--epochs 4] [--steps 8] [--precision auto] [--tiny]
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
    ap.add_argument("--tiny", action="store_true",
                    help="a tiny network (steps of milliseconds): shows the per-step cost of the input path itself")
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
    net = dict(unet_n_depth=1, unet_n_first=4, unet_kern_size=3) if args.tiny else \
        dict(unet_n_depth=3, unet_n_first=32, unet_kern_size=5)
    model = DeepContrast(Config("YX", **net, train_batch_size=bs, train_tensorboard=False, precision=args.precision),
                         basedir=None)
    fixed = tf.data.Dataset.from_tensors((X[:bs], Y[:bs])).repeat()

    def train():
        model.train(X, Y, val, epochs=1, steps_per_epoch=args.steps)

    def fit(data):
        model.keras_model.fit(data, validation_data=val, epochs=1, steps_per_epoch=args.steps,
                              callbacks=model.callbacks, verbose=1, shuffle=False)

    model.prepare_for_training()
    timer = _EpochStepTimer()
    model.callbacks.append(timer)
    contenders = {"train": train, "DataWrapper": lambda: fit(iter(DataWrapper(X, Y, bs, length=args.steps))),
                  "in-memory": lambda: fit(fixed)}
    times = {k: [] for k in contenders}
    for _ in range(args.epochs):
        for k, fn in contenders.items():
            fn()
            times[k] += timer.step_gaps()
    med = {k: float(np.median(v)) for k, v in times.items()}
    data = DataWrapper(X, Y, bs, length=200)
    t = time.perf_counter()
    for i in range(200):
        data[i]
    t_batch = (time.perf_counter() - t) / 200
    print(f"{'tiny' if args.tiny else 'demo'} 2D net, batch {bs} of 64x64, precision {model.precision}, {args.steps} steps/epoch, "
          f"median of {len(times['train'])} steps each, {args.epochs} epochs interleaved")
    for k in contenders:
        wait = "" if k == "in-memory" else f"   waiting fraction {1 - med['in-memory'] / med[k]:+.3f}"
        print(f"  step time, {k:12s}: {1e3 * med[k]:8.1f} ms{wait}")
    print(f"  drawing one batch alone : {1e3 * t_batch:8.3f} ms ({t_batch / med['train']:.4f} of a step)")


if __name__ == "__main__":
    main()
