"""The 3D route on the built-in sample, one ablation per run: deepest-third PSNR/SSIM per iteration vs RL.

The recipe of the real-data acceptance run (``bench_real.py``): ``synthetic_tissue()`` rendered
at 50 photons, ``DegradedRawData.from_arrays(..., 'auto', (10, 40), n_degradations=4)``,
``create_patches(..., (8, 64, 64), 128)``, ``Config('ZYX', 1, 1, train_epochs=15,
train_steps_per_epoch=30, train_batch_size=4)``; each option changes one thing (precision,
input pipeline: our tf.data or CSBDeep's ``CARE.train``, U-Net depth, width, kernel, patch,
learning rate, normalization per plane or per stack). Prints (and writes ``--out``/res_TAG.json) PSNR/SSIM
of the deepest third against the clean truth for iterations 0-3 with physical iterates on and
off, and CLAHE / Richardson-Lucy (given the exact rendering model).

Usage: python benchmarks/bench_route3d.py [--precision auto] [--depth 2] [--pipeline tfdata|csbdeep] ...
"""
import argparse, os, json, time, tempfile, logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
p = argparse.ArgumentParser()
p.add_argument("--precision", default="auto"); p.add_argument("--pipeline", default="tfdata")
p.add_argument("--depth", type=int, default=2); p.add_argument("--first", type=int, default=32)
p.add_argument("--kern", type=int, default=3); p.add_argument("--patch", default="8,64,64")
p.add_argument("--npatch", type=int, default=128); p.add_argument("--epochs", type=int, default=15)
p.add_argument("--steps", type=int, default=30); p.add_argument("--batch", type=int, default=4)
p.add_argument("--lr", type=float, default=0.0004); p.add_argument("--seed", type=int, default=0)
p.add_argument("--tag", default="run"); p.add_argument("--out", default=".")
p.add_argument("--norm", default="plane", choices=("plane", "stack"),
               help="plane: every plane normalized on its own (DegradedRawData's default), stack: whole stacks")
a = p.parse_args()
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
import keras
keras.utils.set_random_seed(a.seed)
from deepcontrast import DeepTissueDegradation
from deepcontrast.data import DegradedRawData, create_patches, synthetic_tissue
from deepcontrast.models import Config, DeepContrast
from deepcontrast.evaluate import evaluate_iterates, compute_baselines
from csbdeep.io import load_training_data
VS = (2.0, 0.5, 0.5)
deg = DeepTissueDegradation(photons=50)
obs, clean = synthetic_tissue((48, 256, 256), voxel_size=VS, degradation=deg, rng=0)
rng = np.random.default_rng(a.seed)
raw = DegradedRawData.from_arrays([obs], "ZYX", "auto", (10, 40), n_degradations=4, voxel_size=VS, rng=rng,
                                  normalize_planes=a.norm == "plane")
d = tempfile.mkdtemp()
t0 = time.time()
create_patches(raw, tuple(int(v) for v in a.patch.split(",")), a.npatch, save_file=f"{d}/t.npz", verbose=False, rng=rng)
(X, Y), (Xv, Yv), axes = load_training_data(f"{d}/t.npz", validation_split=0.1, verbose=False)
conf = Config(axes, 1, 1, unet_n_depth=a.depth, unet_n_first=a.first, unet_kern_size=a.kern, train_epochs=a.epochs,
              train_steps_per_epoch=a.steps, train_batch_size=a.batch, train_learning_rate=a.lr, precision=a.precision,
              degradation_settings=raw.settings, train_tensorboard=False)
m = DeepContrast(conf, "m", basedir=d)
t1 = time.time()
if a.pipeline == "tfdata":
    h = m.train(X, Y, validation_data=(Xv, Yv), rng=a.seed)
else:
    from csbdeep.models import CARE
    m.prepare_for_training()
    h = CARE.train(m, X, Y, validation_data=(Xv, Yv))
t2 = time.time()
res = {"args": vars(a), "precision": m.precision, "train_s": t2 - t1, "val_loss": h.history["val_loss"][-1]}
base = compute_baselines(obs, "ZYX", degradation=deg, voxel_size=VS)
for phys in (True, False):
    its = m.predict_iterative(obs, "ZYX", 3, physical=phys)
    rep = evaluate_iterates(obs, its, "ZYX", ground_truth=clean, baselines=base, voxel_size=VS)
    rows = [(r["deepest_third"]["psnr"], r["deepest_third"]["ssim"]) for r in rep["iterations"]]
    res[f"phys={phys}"] = rows
    res["baselines"] = {k: (b["deepest_third"]["psnr"], b["deepest_third"]["ssim"]) for k, b in rep["baselines"].items()}
print("RESULT", json.dumps(res))
with open(os.path.join(a.out, f"res_{a.tag}.json"), "w") as f:
    json.dump(res, f)
