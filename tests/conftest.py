"""Test-session set-up: quiet TensorFlow, headless matplotlib and Qt (before any is imported)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # napari plugin tests: no display needed
