"""Test-session set-up: quiet TensorFlow, headless matplotlib (before either is imported)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
