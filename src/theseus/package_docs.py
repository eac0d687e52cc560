"""The docs that ship inside the package (theseus/docs/), found with importlib.resources.

Chip's crash course, the pages of the apps and the workflows' notes are
package data, so an installed Theseus reads the same files as a checkout.
Every reader goes through `doc` (or `docs_folder` where a folder on disk is
needed), never through its own path arithmetic.
"""

from __future__ import annotations

import os
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path


def doc(name: str = "") -> Traversable:
    """A file (or folder) of the package's docs by its path inside docs/: "crash-course.md", "workflows"."""
    return files("theseus").joinpath("docs", *[part for part in name.split("/") if part])


def doc_text(name: str) -> str:
    """The text of a file of the package's docs; '' if there is none."""
    file = doc(name)
    return file.read_text(encoding="utf-8") if file.is_file() else ""


def docs_folder() -> Path:
    """The package's docs folder on disk (the knowledge index watches it; a folder step suggests it)."""
    return Path(os.fspath(doc()))
