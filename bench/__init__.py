"""Benchmarks of remixq against its ceilings: webhook ingest, submission, whole campaigns.

Run with `python -m bench` (or `make bench`); `--quick` for a small run. See docs/benchmarks.md.
"""
