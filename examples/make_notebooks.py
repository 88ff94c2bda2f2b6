"""Generate the example notebooks (run from anywhere: ``python examples/make_notebooks.py``).

The notebooks are committed clean (no outputs); edit them here, not in Jupyter, so that the
four stay consistent. ``tests/test_notebooks.py`` executes them with ``DEEPCONTRAST_QUICK=1``.
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

QUICK_CELL = '''\
import os
# DEEPCONTRAST_QUICK=1 shrinks every setting (sample size, patches, training steps) so that all
# four notebooks run in a few minutes, e.g. for testing. Results are then much weaker.
QUICK = os.environ.get("DEEPCONTRAST_QUICK", "0") == "1"
print("quick mode" if QUICK else "full settings")'''

SAMPLE_SHAPE = '''\
# the built-in sample: a synthetic tissue stack, 2 um between slices, surface = first slice
SAMPLE_SHAPE = (16, 96, 96) if QUICK else (48, 256, 256)
SAMPLE_VOXEL_SIZE = (2.0, 0.5, 0.5)'''


def md(text):
    return new_markdown_cell(text.strip("\n"))


def code(text):
    return new_code_cell(text.strip("\n"))


def forward_model():
    return [
        md("""
# 0. The forward model: what deep tissue does to an image

DeepContrast never sees clean images. It learns from your raw images pushed *deeper* by a
forward model of deep-tissue degradation (`DeepTissueDegradation`). This notebook shows what the
model does and how its parameters change an image. An image of a structure $x$ at depth $z$
(micrometres below the surface) is modelled as

$$y = a(z)\\,\\big[\\,b(z)\\,(x * G_{s_b(z)}) + (1-b(z))\\,(x * G_{s_h(z)})\\,\\big] + \\text{background}$$

* $a(z) = e^{-z/\\text{attenuation\\_length}}$: signal loss,
* $b(z) = e^{-z/\\text{scattering\\_length}}$: the ballistic (unscattered) fraction,
* $s_b(z)^2 = \\text{psf\\_sigma}^2 + (\\text{blur\\_rate}\\cdot z)^2$: the widening ballistic PSF,
* $s_h(z) = \\text{haze\\_sigma} + \\text{haze\\_rate}\\cdot z$: the width of the scattered-light halo,

followed by Poisson shot noise (`photons` per unit intensity) and Gaussian read noise.
"""),
        code(QUICK_CELL),
        code("""
%matplotlib inline
%config InlineBackend.figure_format = 'retina'
import numpy as np
import matplotlib.pyplot as plt

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import synthetic_tissue
from deepcontrast.metrics import contrast_profile, rms_contrast"""),
        md("""
## The model as functions of depth

The defaults (lengths in µm) describe two-photon imaging in brain-like tissue; `photons=50` adds
the shot noise of a typical image normalized to about [0, 1]."""),
        code("""
deg = DeepTissueDegradation(photons=50)
print(deg)
z = np.linspace(0, 200, 201)
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
ax[0].plot(z, deg.attenuation(z), label='signal a(z)')
ax[0].plot(z, deg.ballistic_fraction(z), label='ballistic fraction b(z)')
ax[0].set(xlabel='depth (µm)', ylabel='fraction', title='signal and scattering'); ax[0].legend()
ax[1].plot(z, deg.psf_width(z), label='ballistic PSF sigma s_b(z)')
ax[1].plot(z, deg.haze_width(z), label='halo sigma s_h(z)')
ax[1].set(xlabel='depth (µm)', ylabel='sigma (µm)', title='blur'); ax[1].legend()
plt.tight_layout()"""),
        md("""
## Pushing an image deeper

`deg(img, axes, extra_depth, depth=..., voxel_size=...)` makes a raw image look `extra_depth`
µm deeper. For a single plane the depth it was taken at matters: the blur *increment* from
$z$ to $z + d$ grows with $z$. Here a plane of the synthetic sample seen at 40 µm is pushed
deeper step by step."""),
        code("""
plane_shape = (128, 128) if QUICK else (256, 256)
plane, clean_plane = synthetic_tissue(plane_shape, voxel_size=(0.5, 0.5), depth=40, rng=0)
extra = [0, 20, 40, 80]
fig, ax = plt.subplots(1, len(extra) + 1, figsize=(3.2 * (len(extra) + 1), 3.4))
ax[0].imshow(clean_plane, cmap='magma'); ax[0].set_title('clean structure')
for a, d in zip(ax[1:], extra):
    img = deg(plane, 'YX', d, depth=40, voxel_size=(0.5, 0.5), rng=1)
    a.imshow(img, cmap='magma', vmin=0, vmax=np.percentile(plane, 99.8))
    a.set_title(f'+{d} µm (RMS contrast {rms_contrast(img):.2f})')
for a in ax: a.axis('off')
plt.tight_layout()"""),
        md("""
## What each parameter does

One parameter at a time, the rest at their defaults; every panel is the same plane pushed
40 µm deeper. Noise (`photons`) matters most for training: if the training degradation adds
no noise, the network never learns to tell noise from structure."""),
        code("""
variants = {
    'attenuation_length': [75, 150, 300],
    'scattering_length': [50, 100, 200],
    'blur_rate': [0.01, 0.03, 0.06],
    'photons': [10, 50, None],
}
fig, ax = plt.subplots(len(variants), 3, figsize=(9, 3 * len(variants)))
vmax = np.percentile(plane, 99.8)
for row, (name, values) in zip(ax, variants.items()):
    for a, v in zip(row, values):
        img = deg.replace(**{name: v})(plane, 'YX', 40, depth=40, voxel_size=(0.5, 0.5), rng=1)
        a.imshow(img, cmap='magma', vmin=0, vmax=vmax); a.axis('off')
        a.set_title(f'{name}={v}', fontsize=10)
plt.tight_layout()"""),
        md("""
## A stack: contrast falls with depth

In a stack every slice has its own depth (`voxel_size` along Z, `surface` says which end is
the tissue surface). The built-in sample `synthetic_tissue` is such a stack with its clean
truth, rendered through the forward model."""),
        code(SAMPLE_SHAPE),
        code("""
observed, clean = synthetic_tissue(SAMPLE_SHAPE, voxel_size=SAMPLE_VOXEL_SIZE, rng=0)
depths = deg.slice_depths(len(observed), voxel_size_z=SAMPLE_VOXEL_SIZE[0])
fig, ax = plt.subplots(1, 3, figsize=(14, 3.8), gridspec_kw=dict(width_ratios=[1, 1, 1.2]))
y = observed.shape[1] // 2
aspect = SAMPLE_VOXEL_SIZE[0] / SAMPLE_VOXEL_SIZE[2]
ax[0].imshow(clean[:, y], cmap='magma', aspect=aspect); ax[0].set_title('clean, XZ section')
ax[1].imshow(observed[:, y], cmap='magma', aspect=aspect); ax[1].set_title('observed, XZ section')
for a in ax[:2]: a.set(xlabel='X (pixels)', ylabel='Z (slices, surface on top)')
ax[2].plot(depths, contrast_profile(clean, 'ZYX'), label='clean')
ax[2].plot(depths, contrast_profile(observed, 'ZYX'), label='observed')
ax[2].set(xlabel='depth (µm)', ylabel='RMS contrast (std / mean)', title='contrast vs depth'); ax[2].legend()
plt.tight_layout()"""),
        md("""
## Consistency: deeper by $d_1$ then $d_2$ is deeper by $d_1 + d_2$

Attenuation and the ballistic blur compose exactly; the halo only approximately. Without
noise the two routes agree closely:"""),
        code("""
quiet = deg.replace(photons=None)
a = quiet(quiet(plane, 'YX', 15, depth=40, voxel_size=(0.5, 0.5)), 'YX', 25, depth=55, voxel_size=(0.5, 0.5))
b = quiet(plane, 'YX', 40, depth=40, voxel_size=(0.5, 0.5))
print(f'relative difference: {np.abs(a - b).mean() / b.mean():.3%}')"""),
        md("""
Next: [1_datagen.ipynb](1_datagen.ipynb) turns raw images into training pairs with this model."""),
    ]


def datagen():
    return [
        md("""
# 1. Training data: raw images pushed deeper

DeepContrast trains on pairs (*degraded raw* → *raw*): the input is your raw image pushed
`extra_depth` µm deeper by the forward model, the target is the raw image itself. As in
CSBDeep, the patches go to `data/my_training_data.npz` (with the generation settings in
`data/my_training_data.settings.json`), which [2_training.ipynb](2_training.ipynb) reads."""),
        code(QUICK_CELL),
        code("""
%matplotlib inline
%config InlineBackend.figure_format = 'retina'
from pathlib import Path
import numpy as np
import matplotlib.pyplot as plt
from tifffile import imread, imwrite
from csbdeep.utils import plot_some

from deepcontrast import DeepTissueDegradation
from deepcontrast.data import DegradedRawData, create_patches, load_settings, per_slice, synthetic_tissue"""),
        md("""
## The built-in sample

A synthetic tissue stack with known clean truth, written as TIFFs to `data/sample/raw/` and
`data/sample/ground_truth/` (the truth is only used in [3_prediction.ipynb](3_prediction.ipynb) to
score the result). Skip this cell for your own data."""),
        code(SAMPLE_SHAPE),
        code("""
SAMPLE_DEGRADATION = DeepTissueDegradation(photons=50)   # the forward model the sample is rendered with
observed, clean = synthetic_tissue(SAMPLE_SHAPE, voxel_size=SAMPLE_VOXEL_SIZE, degradation=SAMPLE_DEGRADATION, rng=0)
for folder, img in (('raw', observed), ('ground_truth', clean)):
    Path('data/sample', folder).mkdir(parents=True, exist_ok=True)
    imwrite(f'data/sample/{folder}/sample.tif', img, imagej=True, metadata={'axes': 'ZYX'})
print('sample:', observed.shape, observed.dtype)"""),
        md("""
## ▶ Your data: edit this cell

Put your raw stacks (TIFF) in a folder such as `data/my_stacks/raw/` and describe them here.
For your own images set `degradation = 'auto'`: the forward model's noise and parameters are then
calibrated from the images (`DeepTissueDegradation.calibrate`). For the sample we use the model
it was rendered with."""),
        code("""
# ======================= YOUR DATA =======================
basepath    = 'data/sample'        # e.g. 'data/my_stacks'
source_dirs = ['raw']              # sub-folders of basepath holding the raw TIFFs
axes        = 'ZYX'                # 'YX' for single planes
voxel_size  = SAMPLE_VOXEL_SIZE    # µm per pixel along Z, Y, X, e.g. (2.0, 0.5, 0.5)
surface     = 'first'              # which end of Z is the tissue surface: 'first' or 'last'
depth       = 0.0                  # depth (µm) of the surface-most slice (of the plane, for 2D: it matters!)
degradation = SAMPLE_DEGRADATION   # for your own data: 'auto'
extra_depth = (10, 40)             # how much deeper (µm) the training inputs are pushed
# =========================================================="""),
        md("""
## Degraded vs raw

The same stack pushed deeper by a few amounts (the middle slice of the stack):"""),
        code("""
raw = imread(sorted(Path(basepath, source_dirs[0]).glob('*.tif*'))[0])
deg = DeepTissueDegradation.calibrate(raw, axes, voxel_size=voxel_size, surface=surface, depth=depth)[0] \\
    if degradation == 'auto' else degradation
print(deg)
k = raw.shape[0] // 2 if 'Z' in axes else slice(None)
extra = [0, 10, 25, 40]
fig, ax = plt.subplots(1, len(extra), figsize=(3.3 * len(extra), 3.5))
vmax = np.percentile(raw[k], 99.8)
for a, d in zip(ax, extra):
    img = deg(raw, axes, d, voxel_size=voxel_size, surface=surface, depth=depth, rng=0)
    a.imshow(img[k], cmap='magma', vmin=0, vmax=vmax); a.set_title(f'raw + {d} µm' if d else 'raw'); a.axis('off')
plt.tight_layout()"""),
        md("""
## Training pairs

`DegradedRawData` is a CSBDeep `RawData`: it yields `(degraded, raw)` pairs, each raw stack
degraded `n_degradations` times with extra depths drawn from `extra_depth`. Nothing is computed
until patches are extracted."""),
        code("""
raw_data = DegradedRawData.from_folder(
    basepath, source_dirs, axes, degradation, extra_depth,
    n_degradations=2 if QUICK else 4, voxel_size=voxel_size, surface=surface, depth=depth, rng=0)
print(raw_data.description)
print(raw_data.settings['degradation'])"""),
        md("""
## Patches

For an anisotropic stack (Z steps of micrometres, pixels of a fraction of one) a 2D network on
XY planes learns much faster than a 3D network. `per_slice` turns every degraded stack into its
planes (each degraded at its own depth), and each plane is normalized on its own, as the model
will normalize each plane when it predicts (`Config.from_training_data` reads that from the
settings). (For a 3D network use `create_patches(raw_data, (16, 64, 64), ...)` instead.)"""),
        code("""
patch_size = (32, 32) if QUICK else (64, 64)
n_patches_per_image = 128 if QUICK else 768
if 'Z' in axes:
    n_z = raw_data.shapes[0][axes.index('Z')]
    X, Y, XY_axes = create_patches(per_slice(raw_data), patch_size, max(1, n_patches_per_image // n_z),
                                   save_file='data/my_training_data.npz')
else:
    X, Y, XY_axes = create_patches(raw_data, patch_size, n_patches_per_image,
                                   save_file='data/my_training_data.npz')
print('patches:', X.shape, XY_axes)
print('settings saved with them:', sorted(load_settings('data/my_training_data.npz')))"""),
        code("""
for i in range(2):
    plt.figure(figsize=(16, 4))
    sl = slice(8 * i, 8 * (i + 1))
    plot_some(X[sl], Y[sl], title_list=[np.arange(sl.start, sl.stop)], pmax=99.8)
    plt.suptitle('top: degraded input, bottom: raw target')
plt.show()"""),
        md("""
Next: [2_training.ipynb](2_training.ipynb)."""),
    ]


def training():
    return [
        md("""
# 2. Training a DeepContrast network

The network learns to undo the extra degradation: input = degraded raw, target = raw. It is a
CSBDeep CARE network (`DeepContrast` subclasses `CARE`), saved CSBDeep-style in
`models/my_model` together with the data settings."""),
        code(QUICK_CELL),
        code("""
%matplotlib inline
%config InlineBackend.figure_format = 'retina'
import matplotlib.pyplot as plt
from csbdeep.io import load_training_data
from csbdeep.utils import plot_history, plot_some

from deepcontrast import Config, DeepContrast"""),
        md("""
## Training data

From [1_datagen.ipynb](1_datagen.ipynb); 10% are held out for validation."""),
        code("""
(X, Y), (X_val, Y_val), axes = load_training_data('data/my_training_data.npz', validation_split=0.1, verbose=True)"""),
        md("""
## Configuration

`Config.from_training_data` reads the axes and channels from the npz and the data-generation
settings from its side file (they are saved with the model). The U-Net is three levels deep
so that its receptive field covers the wide scattered-light halo of deep slices. 450 steps of
batch 16 are enough for the sample; for your own data train longer (e.g. `train_epochs=100`) and watch the
validation loss."""),
        code("""
config = Config.from_training_data(
    'data/my_training_data.npz',
    unet_n_depth=2 if QUICK else 3, unet_n_first=8 if QUICK else 32,
    train_batch_size=16, train_epochs=3 if QUICK else 15, train_steps_per_epoch=10 if QUICK else 30,
    train_learning_rate=4e-4)
print(config)
vars(config)"""),
        code("""
model = DeepContrast(config, 'my_model', basedir='models')
model.keras_model.summary(line_length=100) if not QUICK else None"""),
        md("""
## Training

Progress is shown per epoch; with `tensorboard` installed, `tensorboard --logdir=models` shows
it live."""),
        code("""
history = model.train(X, Y, validation_data=(X_val, Y_val))"""),
        code("""
print(sorted(history.history))
plt.figure(figsize=(16, 5))
plot_history(history, ['loss', 'val_loss'], ['mse', 'val_mse', 'mae', 'val_mae'])"""),
        md("""
## Validation patches

Top to bottom: degraded input, raw target, prediction."""),
        code("""
plt.figure(figsize=(16, 6))
_P = model.keras_model.predict(X_val[:8], verbose=0)
plot_some(X_val[:8], Y_val[:8], _P, pmax=99.8)
plt.suptitle('top: input, middle: target, bottom: prediction')
plt.show()"""),
        md("""
The best weights are in `models/my_model/weights_best.h5`. Next:
[3_prediction.ipynb](3_prediction.ipynb)."""),
    ]


def prediction():
    return [
        md("""
# 3. Prediction: iterate, look at the trade-off, export

The network was trained to undo *extra* degradation; applied to the raw images themselves it
raises their contrast. Applied again (iterative prediction), contrast keeps rising while fine
detail is slowly lost: look at the trade-off and choose the number of iterations."""),
        code(QUICK_CELL),
        code("""
%matplotlib inline
%config InlineBackend.figure_format = 'retina'
from pathlib import Path
import numpy as np
import matplotlib.pyplot as plt
from tifffile import imread

from deepcontrast import DeepContrast
from deepcontrast.evaluate import evaluate_model, format_table"""),
        md("""
## ▶ Your data: edit this cell"""),
        code("""
# ======================= YOUR DATA =======================
image_file        = 'data/sample/raw/sample.tif'
axes              = 'ZYX'
voxel_size        = (2.0, 0.5, 0.5)   # µm per pixel
surface           = 'first'           # which end of Z is the tissue surface
depth             = 0.0               # depth (µm) of the surface-most slice
ground_truth_file = 'data/sample/ground_truth/sample.tif'   # None for your own data (no truth)
n_iter            = 2 if QUICK else 3
# =========================================================="""),
        code("""
img = imread(image_file)
ground_truth = imread(ground_truth_file) if ground_truth_file else None
model = DeepContrast(None, 'my_model', basedir='models')
# a 2D network (trained on XY slices) applies to a stack slice by slice, normalized as a whole
print(img.shape, 'network axes:', model.config.axes)"""),
        md("""
## Iterative prediction

`predict_iterative` returns one image per iteration, with intensities comparable to the input."""),
        code("""
iterates = model.predict_iterative(img, axes, n_iter)
k = img.shape[0] * 5 // 6 if 'Z' in axes else slice(None)   # a deep slice
views = [img[k]] + [it[k] for it in iterates] + ([ground_truth[k]] if ground_truth is not None else [])
titles = ['raw'] + [f'iteration {i + 1}' for i in range(n_iter)] + (['clean truth'] if ground_truth is not None else [])
fig, ax = plt.subplots(1, len(views), figsize=(3.3 * len(views), 3.6))
for a, v, t in zip(ax, views, titles):
    a.imshow(v, cmap='magma', vmin=np.percentile(v, 1), vmax=np.percentile(v, 99.8)); a.set_title(t); a.axis('off')
plt.tight_layout()"""),
        md("""
## Contrast, detail and the trade-off

`evaluate_model` scores every iteration (contrast gain over the raw, detail retention, and
PSNR/SSIM against the truth when there is one) next to CLAHE and Richardson-Lucy
deconvolution, suggests a number of iterations, and writes `results/metrics.json`, the figures
and TIFFs of every result."""),
        code("""
report = evaluate_model(model, img, axes, n_iter=n_iter, ground_truth=ground_truth, voxel_size=voxel_size,
                        surface=surface, depth=depth, out_dir='results')
print(format_table(report))"""),
        code("""
from IPython.display import Image, display
for name in ('contrast_profile.png', 'iterations.png', 'tradeoff.png'):
    if Path('results', name).exists():
        display(Image(filename=str(Path('results', name))))"""),
        md("""
## Export for Fiji

`export_TF` writes a CSBDeep-format zip that Fiji's CSBDeep plugin (TensorFlow 1.x) loads.
In Fiji: *Plugins › CSBDeep › Run your network*, choose the zip as *Import model (.zip) from
file*, set the axes of your image, and run. For iteration 2, run the network again on its output.
The same zip works with `csbdeep`'s Python API (`CARE` models) and its ImageJ macro commands."""),
        code("""
fiji_zip = model.export_TF()
print('Fiji model:', fiji_zip)"""),
        md("""
## Export for bioimage.io

A bioimage.io model package runs in deepImageJ, ilastik, QuPath and `bioimageio.core`
(`bioimageio predict ...`). It needs the optional extra: `pip install "deepcontrast[bioimageio]"`.
Fill in your name and a description before sharing it."""),
        code("""
try:
    sample_input = img[img.shape[0] // 2] if 'Z' in axes and 'Z' not in model.config.axes else img
    package = model.export_bioimageio(
        'models/my_model_bioimageio.zip', name='DeepContrast example model',
        description='DeepContrast (contrast restoration of deep-tissue fluorescence), trained on the synthetic sample',
        authors=[{'name': 'Your Name'}], input_sample=sample_input)
    print('bioimage.io package:', package)
    print("test it:  bioimageio test models/my_model_bioimageio.zip")
except ImportError as e:
    print(f'bioimage.io export skipped: the optional extra is missing ({e}). '
          'Install it with: pip install "deepcontrast[bioimageio]"')"""),
    ]


NOTEBOOKS = {
    "0_forward_model.ipynb": forward_model,
    "1_datagen.ipynb": datagen,
    "2_training.ipynb": training,
    "3_prediction.ipynb": prediction,
}


def main():
    for name, make in NOTEBOOKS.items():
        cells = make()
        for i, cell in enumerate(cells):
            cell["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives no spurious diffs
        nb = new_notebook(cells=cells, metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        })
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
