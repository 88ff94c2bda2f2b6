"""The end-to-end demo: ``deepcontrast demo`` and :func:`run_demo`.

One call runs the whole DeepContrast workflow on the built-in ``synthetic_tissue`` sample
(or on your own stack): forward-model training data, training, iterative prediction,
evaluation against the clean truth and the CLAHE / Richardson-Lucy baselines, and export
for Fiji. Everything lands in one output folder.
"""
from .outdir import MARKER, prepare_out_dir
from .pipeline import run_demo
from .settings import demo_settings

__all__ = ["run_demo", "demo_settings", "prepare_out_dir", "MARKER"]
