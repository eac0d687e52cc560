"""Workflows: notebook-like step pipelines (the engine in engine.py, the built-in workflows beside it)."""
