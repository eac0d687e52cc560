"""Which files a change may write, and how a path in a change names one.

`apps/…` and `workflows/…` are in the data dir; `src/theseus/…` is the package
source in the checkout (only when Theseus runs from one), and `docs/…` its docs
(`src/theseus/docs/…`). Git's `a/` and `b/` prefixes are dropped. A path outside
those roots, one that leaves them through `..` or a symlink, and a file that is
not UTF-8 text are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..devloop import PACKAGE_DIR, is_source_checkout

FILE_LIMIT = 1_000_000  # bytes of one file a change may write
DATA_ROOTS = ("apps", "workflows")


class ChangeError(Exception):
    """A change that cannot be applied; str() says why. Nothing was written."""


@dataclass(frozen=True)
class Target:
    """A file a change may write: its name in the change and where it is on disk."""

    name: str  # "apps/notes.py", "src/theseus/apps/tasks.py"
    path: Path

    def read(self) -> str | None:
        """Its text now; None if it does not exist. ChangeError for a file that is not UTF-8 text."""
        if self.path.is_dir():
            raise ChangeError(f"{self.name} is a folder; a change writes files.")
        if not self.path.exists():
            return None
        data = self.path.read_bytes()
        return text_of(data, self.name)


def text_of(data: bytes, name: str) -> str:
    if len(data) > FILE_LIMIT:
        raise ChangeError(f"{name} is {len(data):,} bytes; a change may write files up to {FILE_LIMIT:,}.")
    if b"\x00" in data:
        raise ChangeError(f"{name} is a binary file; only text files can be changed.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ChangeError(f"{name} is not UTF-8 text; only text files can be changed.") from None


def checkout_root() -> Path | None:
    """The checkout Theseus runs from (the folder holding src/theseus), or None when installed."""
    return PACKAGE_DIR.parent.parent if is_source_checkout() else None


def roots(config) -> dict[str, Path]:
    """Each allowed root by its name in a change."""
    found = {name: (config.data_dir / name) for name in DATA_ROOTS}
    if checkout_root() is not None:
        found.update({"src/theseus": PACKAGE_DIR, "docs": PACKAGE_DIR / "docs"})
    return found


def target(config, name: str) -> Target:
    """The file a path in a change names; ChangeError if a change may not write it."""
    cleaned = name.strip().replace("\\", "/")
    if cleaned[:2] in ("a/", "b/"):
        cleaned = cleaned[2:]
    parts = PurePosixPath(cleaned).parts
    if not parts or cleaned.startswith("/") or ".." in parts or any(p in ("", ".") for p in parts):
        raise ChangeError(f"{name[:200]!r} is not a relative path inside apps/, workflows/, src/theseus/ or docs/.")
    allowed = roots(config)
    root_name = next((r for r in allowed if PurePosixPath(*parts[:len(PurePosixPath(r).parts)]) == PurePosixPath(r)),
                     None)
    if root_name is None or len(parts) <= len(PurePosixPath(root_name).parts):
        where = ", ".join(f"{r}/" for r in allowed)
        raise ChangeError(f"{cleaned[:200]} is outside what a change may write ({where}).")
    root = allowed[root_name]
    path = root.joinpath(*parts[len(PurePosixPath(root_name).parts):])
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root) or path.is_symlink():
        raise ChangeError(f"{cleaned[:200]} leads outside {root_name}/ (a symlink); it is not changed.")
    return Target(PurePosixPath(*parts).as_posix(), path)
