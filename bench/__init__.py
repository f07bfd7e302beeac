"""Benchmarks for Coflux for Jupyter (never run as tests). Entry point: ``bench/run.py``."""
