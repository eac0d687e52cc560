"""Third-party front-end libraries: installed by `npm ci` at setup, served from /vendor/.

The versions and integrity hashes live in package.json and package-lock.json;
nothing third-party is committed. At run time the files are read from the
checkout's node_modules, so the app needs no internet.
"""

from __future__ import annotations

from pathlib import Path

# URL name under /vendor/ -> path inside node_modules
VENDOR_FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "sse.js": "htmx-ext-sse/dist/sse.min.js",
    "ws.js": "htmx-ext-ws/dist/ws.min.js",
    "pico.min.css": "@picocss/pico/css/pico.min.css",
    "Sortable.min.js": "sortablejs/Sortable.min.js",
}

STATIC_DIR = Path(__file__).parent / "static"


def node_modules() -> Path:
    """Where `npm ci` put the libraries: the project root (the checkout holding this package)."""
    return Path(__file__).resolve().parents[2] / "node_modules"


def vendor_path(name: str) -> Path | None:
    """The file behind /vendor/NAME, or None if NAME is not a known library file."""
    relative = VENDOR_FILES.get(name)
    return node_modules() / relative if relative else None


def missing_vendor_files() -> list[str]:
    """Library files that setup has not installed yet."""
    return [name for name in VENDOR_FILES if not vendor_path(name).is_file()]
