"""Make docs/napari_restore.png: the Restore widget on the built-in sample (refresh it with this script).

Usage (a display is needed for OpenGL; on a headless machine use Xvfb). With Mesa's software
OpenGL (Xvfb, VMs) TensorFlow and the OpenGL canvas crash together in one process unless
TensorFlow is imported first and Mesa uses its softpipe driver (not llvmpipe), so this script
imports TensorFlow before napari and is run with GALLIUM_DRIVER=softpipe::

    deepcontrast demo                       # trains deepcontrast_demo/models/demo_model
    GALLIUM_DRIVER=softpipe xvfb-run -a python docs/make_napari_screenshot.py \
        --model deepcontrast_demo/models/demo_model

The sample is opened as in *File > Open Sample > deepcontrast*, the model restores it with
``--n-iter`` iterations, the viewer shows the deep slice ``--z`` of the raw stack and of the
suggested iterate side by side (grid), and ``viewer.screenshot`` writes the window.
"""
import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model folder (config.json + weights_*.h5)")
    p.add_argument("--n-iter", type=int, default=3)
    p.add_argument("--z", type=int, default=30, help="slice to show (0 = tissue surface)")
    p.add_argument("--out", default=str(HERE / "napari_restore.png"))
    args = p.parse_args(argv)

    import deepcontrast.models  # noqa: F401  (TensorFlow before Qt's OpenGL: see the docstring)
    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from deepcontrast.napari import RestoreWidget, make_sample

    viewer = napari.Viewer(title="deepcontrast", show=True)
    viewer.window.resize(1500, 900)
    for data, meta, _ in make_sample():
        viewer.add_image(data, **meta)
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore (deepcontrast)", area="right")
    w.model_path.value = args.model
    w.layer.value = viewer.layers[0]
    w.n_iter.value = args.n_iter
    w.run()
    while w.worker is not None:
        QApplication.processEvents()
        time.sleep(0.05)
    if not w.result_layers:
        raise SystemExit(f"restoration failed: {w.message.value}")
    raw, chosen = viewer.layers[0], w.result_layers[w.suggested - 1]
    for lay in list(viewer.layers):
        if lay not in (raw, chosen):
            viewer.layers.remove(lay)
    plane = raw.data[args.z]
    limits = (float(np.percentile(plane, 1)), float(np.percentile(plane, 99.8)))
    for lay in (raw, chosen):  # the same limits on both, so darkening and gain stay visible
        lay.visible, lay.contrast_limits = True, limits
    viewer.grid.enabled = True
    viewer.dims.set_point(0, args.z * raw.scale[0])
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    viewer.screenshot(args.out, canvas_only=False, flash=False)
    print(f"wrote {args.out}")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: Qt and TensorFlow have crashed there (after the file is written)


if __name__ == "__main__":
    main()
