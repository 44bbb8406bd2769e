"""Helpers shared by the test suites: fixtures live in conftest.py files, everything they and the
tests call lives here (no test module imports another test module or a conftest)."""
