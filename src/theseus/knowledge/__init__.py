"""Knowledge: indexing and hybrid retrieval over the docs, Theseus's own source code and the action log."""

from .service import Knowledge, default_sources

__all__ = ["Knowledge", "default_sources"]
