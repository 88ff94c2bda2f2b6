"""Prediction speed of DeepContrast vs CSBDeep's CARE.predict and the raw Keras call.

One run, same weights (CSBDeep's default CARE net, freshly initialized with a fixed seed):

- 2D, 1024x1024: raw Keras call on the normalized array, ours untiled, ours n_tiles=(4,4),
  CSBDeep n_tiles=(4,4) (and untiled, for context);
- 3D, 64x512x512, n_tiles=(1,4,4): ours vs CSBDeep. (The untiled 3D call would need ~10 GB;
  the reference for the deviation is CSBDeep's tiled output, whose halo covers the full
  theoretical receptive field, i.e. equals the untiled output up to float round-off.)

- 2D model on a stack whose window count is prime (37 planes of 256x256, untiled, 31 planes
  fit one call): padded equal-size batches (ours) vs the former batch size, the largest divisor
  of the window count (1 for a prime count), timed in the same run.

Prints Mpixel/s, the ratios (targets: ours/CSBDeep at the same n_tiles >= 1.4, our untiled
overhead over the raw Keras call <= 1.1) and the largest deviation of tiled from untiled output
relative to the untiled output range (target <= 0.01). Timings are the best of ``--repeat``
runs after one warm-up (the machine may be shared).

Usage: python benchmarks/bench_predict.py [--repeat 2] [--skip-3d]
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from _timing import best_times  # noqa: E402  (benchmarks/, run as a script)


def sample(shape, rng=0):
    """Fluorescence-like test image: blurred blobs on a dim textured background."""
    rng = np.random.default_rng(rng)
    spots = (rng.random(shape) > 0.997).astype(np.float32) * 50
    img = ndimage.gaussian_filter(spots, 2) + ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 4)
    return (100 + 400 * img + rng.normal(0, 5, shape)).astype(np.float32)



def rel_dev(a, ref):
    return float(np.abs(a - ref).max() / (ref.max() - ref.min()))


def bench_prime_window_count(model, repeat, shape=(37, 256, 256)):
    """Padded last batch vs the former largest-divisor batch size, for a prime window count."""
    from csbdeep.data import PercentileNormalizer

    from deepcontrast.models.tiling import predict_tiled

    stack = sample(shape, rng=2)
    x = PercentileNormalizer().before(stack[..., None], "ZYXC")
    tiles, max_batch, halo = model._plan(x.shape, None)
    n_jobs = x.shape[0] * int(np.prod(tiles))
    old_bs = max(d for d in range(1, min(max_batch, n_jobs) + 1) if n_jobs % d == 0)
    n_calls = -(-n_jobs // max_batch)
    new_bs = -(-n_jobs // n_calls)
    pob = model.keras_model.predict_on_batch
    t, y = best_times({
        "padded": lambda: predict_tiled(pob, x, tiles, halo, 4, n_channel_out=1, max_batch=max_batch),
        "divisor": lambda: predict_tiled(pob, x, tiles, halo, 4, n_channel_out=1, max_batch=old_bs),
    }, repeat)
    mpx = x[..., 0].size / 1e6
    print(f"2D net on {shape[0]} planes {shape[1:]} ({n_jobs} windows, prime; up to {max_batch} per call)")
    print(f"  padded last batch ({n_calls} calls of {new_bs}) : {mpx / t['padded']:6.3f} Mpixel/s")
    print(f"  largest divisor ({n_jobs // old_bs} calls of {old_bs}, former) : {mpx / t['divisor']:6.3f} Mpixel/s")
    print(f"  ratio padded/former         : {t['divisor'] / t['padded']:5.2f}  (target >= 2)")
    print(f"  max |padded - former| / range : {rel_dev(y['padded'], y['divisor']):.2e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-3d", action="store_true")
    args = ap.parse_args(argv)

    import keras
    from csbdeep.data import PercentileNormalizer
    from csbdeep.models import CARE
    from csbdeep.models import Config as CSBDeepConfig

    from deepcontrast.models import Config, DeepContrast

    def pair(axes):
        keras.utils.set_random_seed(0)
        ours = DeepContrast(Config(axes), basedir=None)
        theirs = CARE(CSBDeepConfig(axes, train_tensorboard=False), basedir=None)
        theirs.keras_model.set_weights(ours.keras_model.get_weights())
        return ours, theirs

    # ---------------------------------------------------------------- 2D
    ours, theirs = pair("YX")
    img = sample((1024, 1024))
    mpx = img.size / 1e6
    xn = PercentileNormalizer().before(img[..., None], "YXC")[None]
    t, y = best_times({
        "raw_pob": lambda: ours.keras_model.predict_on_batch(xn),
        "raw_call": lambda: ours.keras_model(xn, training=False).numpy(),
        "un": lambda: ours.predict(img, "YX", n_tiles=(1, 1)),
        "44": lambda: ours.predict(img, "YX", n_tiles=(4, 4)),
        "c44": lambda: theirs.predict(img, "YX", n_tiles=(4, 4)),
        "cun": lambda: theirs.predict(img, "YX"),
    }, args.repeat)
    t_raw_pob, t_raw_call, t_un, t_44, t_c44, t_cun = (t[k] for k in ("raw_pob", "raw_call", "un", "44", "c44", "cun"))
    t_raw = min(t_raw_pob, t_raw_call)
    y_un, y_44, y_c44, y_cun = (y[k] for k in ("un", "44", "c44", "cun"))
    print(f"2D {img.shape}, default CARE net; tiling halo ours {ours.tile_halo()[0]} px, CSBDeep 43 px")
    print(f"  raw Keras call (normalized) : {mpx / t_raw:6.3f} Mpixel/s  (predict_on_batch {t_raw_pob:.2f} s, "
          f"__call__ {t_raw_call:.2f} s)")
    print(f"  ours untiled                : {mpx / t_un:6.3f} Mpixel/s")
    print(f"  ours n_tiles=(4,4)          : {mpx / t_44:6.3f} Mpixel/s")
    print(f"  CSBDeep untiled             : {mpx / t_cun:6.3f} Mpixel/s")
    print(f"  CSBDeep n_tiles=(4,4)       : {mpx / t_c44:6.3f} Mpixel/s")
    print(f"  ratio ours/CSBDeep (4,4)    : {t_c44 / t_44:5.2f}  (target >= 1.4)")
    print(f"  overhead ours untiled / raw : {t_un / t_raw:5.3f} (target <= 1.1)")
    print(f"  max |tiled - untiled| / range, ours (4,4)    : {rel_dev(y_44, y_un):.2e} (target <= 1e-2)")
    print(f"  max |tiled - untiled| / range, CSBDeep (4,4) : {rel_dev(y_c44, y_cun):.2e}")
    print(f"  max |ours untiled - CSBDeep untiled| / range : {rel_dev(y_un, y_cun):.2e}")

    bench_prime_window_count(ours, args.repeat)

    if args.skip_3d:
        return
    # ---------------------------------------------------------------- 3D
    ours, theirs = pair("ZYX")
    vol = sample((64, 512, 512), rng=1)
    mvx = vol.size / 1e6
    ours.tile_halo()  # the one-time halo measurement (cached per weights), not part of the timing
    t, y = best_times({
        "ours": lambda: ours.predict(vol, "ZYX", n_tiles=(1, 4, 4)),
        "theirs": lambda: theirs.predict(vol, "ZYX", n_tiles=(1, 4, 4)),
    }, 1, warmup=False)  # one run each (the 3D calls are long; both include their graph tracing)
    (t_o, t_c), (y_o, y_c) = (t["ours"], t["theirs"]), (y["ours"], y["theirs"])
    print(f"3D {vol.shape}, default CARE net; tiling halo ours {ours.tile_halo()[0]} px, CSBDeep 22 px")
    print(f"  ours n_tiles=(1,4,4)        : {mvx / t_o:6.3f} Mvoxel/s")
    print(f"  CSBDeep n_tiles=(1,4,4)     : {mvx / t_c:6.3f} Mvoxel/s")
    print(f"  ratio ours/CSBDeep (1,4,4)  : {t_c / t_o:5.2f}  (target >= 1.4)")
    print(f"  max |ours tiled - CSBDeep tiled (full halo)| / range : {rel_dev(y_o, y_c):.2e} (target <= 1e-2)")


if __name__ == "__main__":
    main()
