"""Test machinery shared by the test modules: fakes, harnesses, scenarios and builders.

Nothing here is a test, and nothing here imports a test module (an import-linter contract in
``pyproject.toml`` keeps it so); test modules import from here, never from each other."""
