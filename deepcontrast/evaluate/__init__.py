"""Evaluate a DeepContrast model on one image: iterations vs raw vs classical baselines.

- :mod:`.measure`: :func:`evaluate_model` runs the model iteratively (and CLAHE /
  Richardson-Lucy), then :func:`evaluate_iterates` - the pure, array-only part - measures
  everything;
- :mod:`.report`: :func:`write_report` writes ``metrics.json``, three figures and the images;
  :func:`format_table` prints the short summary.

``deepcontrast evaluate`` (:mod:`deepcontrast.cli.evaluate`) is the command-line front end.
"""
from .measure import compute_baselines, evaluate_iterates, evaluate_model
from .report import REPORT_FILES, check_targets, format_table, write_report

__all__ = ["evaluate_model", "evaluate_iterates", "compute_baselines", "write_report", "format_table", "check_targets",
           "REPORT_FILES"]
