"""Shared test settings: headless matplotlib, fast mode, small thread count."""

import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("PHYS555_FAST", "1")
os.environ.setdefault("PHYS555_QUIET", "1")
