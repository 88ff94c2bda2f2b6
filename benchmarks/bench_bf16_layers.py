"""Every layer of the U-Nets in 16 bits against float32: forward outputs, input and weight gradients.

For 2D and 3D U-Nets of depth 1-3 and width (first-layer filters) 8-64, the same weights and
the same batch go through the float32 network and its bfloat16 (or float16) copy
(:func:`deepcontrast.models.precision.with_precision`). One MSE loss (smooth; the MAE gradient
flips sign where a 16-bit rounding crosses the target), then per layer:

* the gradient with respect to the layer's output (= the input gradient of the next layer),
* the gradient with respect to each of its weights,

each compared with float32 as ||16-bit - float32|| / ||float32|| (L2 norms: a max-norm is
dominated by ReLUs that a rounding switches on or off) and as a count of NaN/Inf. Every 16-bit
layer rounds its activations, so right kernels give errors of a few percent, more in the
gradients that pass through many layers. Bias gradients are sums over every voxel of a batch
with heavy cancellation (near a fit, the residuals are zero-mean), so their relative errors
are large for right kernels too (here up to ~0.7 where kernel gradients agree within 1%); the
worst error of each kind is printed. A broken kernel shows as NaN/Inf or kernel/output
gradient errors of order 1. Also prints the
kernel self-test (:func:`deepcontrast.models.kernels.check_kernels`) that ``precision='auto'``
relies on.

Usage: python benchmarks/bench_bf16_layers.py [--dtype bfloat16] [--dims 2,3] [--depths 1,2,3]
       [--widths 8,16,32,64] [--flag 0.5]
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


KINDS = ("output", "kernel", "bias")


def rel_error(got, ref):
    got, ref = np.asarray(got, np.float32), np.asarray(ref, np.float32)
    bad = int(np.size(got) - np.count_nonzero(np.isfinite(got)))
    if bad:
        return float("inf"), bad
    return float(np.linalg.norm(got - ref) / (np.linalg.norm(ref) or 1.0)), 0


def gradients(net, x, y):
    """Loss gradients w.r.t. every layer output and every trainable weight (float32 numpy arrays)."""
    import keras
    import tensorflow as tf

    layers = [la for la in net.layers if not isinstance(la, keras.layers.InputLayer)]
    probe = keras.Model(net.inputs, [la.output for la in layers])
    with tf.GradientTape() as tape:
        outs = probe(x, training=True)
        loss = tf.reduce_mean(tf.square(tf.cast(outs[-1], tf.float32) - y))  # smooth: MAE flips signs
    g_out = tape.gradient(loss, outs[:-1] + probe.trainable_weights)
    n = len(layers) - 1
    grads = {(la.name, "output"): np.asarray(tf.cast(g, tf.float32)) for la, g in zip(layers[:-1], g_out[:n])}
    for w, g in zip(probe.trainable_weights, g_out[n:]):
        grads[(w.path.split("/")[0], w.path.split("/")[-1])] = np.asarray(g)
    return grads


def run(n_dim, depth, width, dtype, flag, rng):
    import keras
    from csbdeep.internals.nets import common_unet

    from deepcontrast.models.precision import with_precision

    keras.utils.set_random_seed(0)
    kern = 3 if n_dim == 3 else 5
    net = common_unet(n_dim=n_dim, n_depth=depth, kern_size=kern, n_first=width, n_channel_out=1,
                      residual=True, last_activation="linear")((None,) * n_dim + (1,))
    shape = (2, 8, 64, 64, 1) if n_dim == 3 else (4, 64, 64, 1)
    x = rng.random(shape, dtype=np.float32)
    y = np.clip(x + 0.1 * rng.standard_normal(shape).astype(np.float32), 0, None)
    ref = gradients(with_precision(net, "float32"), x, y)
    got = gradients(with_precision(net, dtype), x, y)
    worst, bad, flagged = dict.fromkeys(KINDS, 0.0), 0, []
    for (name, kind), g32 in ref.items():
        err, n_bad = rel_error(got[(name, kind)], g32)
        bad += n_bad
        worst[kind] = max(worst[kind], err)
        if err > flag:
            flagged.append(f"{name}/{kind} {'NaN/Inf x' + str(n_bad) if n_bad else f'{err:.2f}'}")
    return worst, bad, flagged


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16"))
    p.add_argument("--dims", default="2,3")
    p.add_argument("--depths", default="1,2,3")
    p.add_argument("--widths", default="8,16,32,64")
    p.add_argument("--flag", type=float, default=1.0, help="list the gradients whose error exceeds this")
    args = p.parse_args()
    from deepcontrast.models.kernels import check_kernels

    rng = np.random.default_rng(0)
    for n_dim in (int(v) for v in args.dims.split(",")):
        print(check_kernels(args.dtype, n_dim))
        print(f"{'net':>14}" + "".join(f"{k + ' grad.':>13}" for k in KINDS) + f"{'NaN/Inf':>9}  gradients above {args.flag}")
        for depth in (int(v) for v in args.depths.split(",")):
            for width in (int(v) for v in args.widths.split(",")):
                worst, bad, flagged = run(n_dim, depth, width, args.dtype, args.flag, rng)
                print(f"{f'{n_dim}D d{depth} w{width}':>14}" + "".join(f"{worst[k]:13.3g}" for k in KINDS)
                      + f"{bad:9d}  {', '.join(flagged) or '-'}")


if __name__ == "__main__":
    main()
