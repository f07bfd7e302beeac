"""Coflux for Jupyter: durable workflows defined in notebooks and modules."""
