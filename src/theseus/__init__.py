"""Theseus: a local-first web app framework where a local LLM rides along."""

__version__ = "0.1.0"
