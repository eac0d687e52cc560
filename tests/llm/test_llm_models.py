"""Assembling a model from parts: verified, done once, refused when wrong."""

import hashlib
import os
from pathlib import Path

import pytest

from theseus.llm import DEFAULT_MODEL, ModelIntegrityError, ModelMissingError, ModelSpec, ensure_model, resolve_model_path
from theseus.llm.models import part_path

PART_BYTES = [b"GGUF" + b"a" * 3000, b"b" * 5000, b"c" * 17]


@pytest.fixture
def parts(tmp_path) -> tuple[Path, ...]:
    folder = tmp_path / "parts"
    folder.mkdir()
    paths = []
    for i, data in enumerate(PART_BYTES, 1):
        path = folder / f"part{i:02}.bin"
        path.write_bytes(data)
        paths.append(path)
    return tuple(paths)


def fake_spec(parts, **changes) -> ModelSpec:
    whole = b"".join(PART_BYTES)
    fields = dict(name="tiny", filename="tiny.gguf", parts=parts, size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
    return ModelSpec(**(fields | changes))


def test_assembles_and_verifies(tmp_path, parts):
    progress = []
    path = ensure_model(tmp_path / "models", fake_spec(parts), progress=lambda phase, f: progress.append((phase, f)))
    assert path == tmp_path / "models" / "tiny.gguf"
    assert path.read_bytes() == b"".join(PART_BYTES)
    assert resolve_model_path(path) == path
    fractions = [f for _, f in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {phase for phase, _ in progress} == {"Assembling model"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.gguf", "tiny.gguf.verified"]


def test_second_call_trusts_the_sidecar_without_reading_parts(tmp_path, parts):
    spec = fake_spec(parts)
    ensure_model(tmp_path, spec)
    for part in parts:
        part.unlink()  # a second assembly or hash would now fail
    progress = []
    assert ensure_model(tmp_path, spec, progress=lambda *a: progress.append(a)) == tmp_path / "tiny.gguf"
    assert progress == []


def test_changed_file_is_reverified_and_repaired(tmp_path, parts):
    spec = fake_spec(parts)
    path = ensure_model(tmp_path, spec)
    path.write_bytes(b"X" * spec.size)  # same size, new content and mtime
    progress = []
    assert ensure_model(tmp_path, spec, progress=lambda phase, f: progress.append(phase)) == path
    assert path.read_bytes() == b"".join(PART_BYTES)
    assert progress[0] == "Verifying model" and progress[-1] == "Assembling model"


def test_intact_file_without_sidecar_is_hashed_not_reassembled(tmp_path, parts):
    spec = fake_spec(parts)
    path = ensure_model(tmp_path, spec)
    Path(str(path) + ".verified").unlink()
    os.utime(path, ns=(1, 1))
    for part in parts:
        part.unlink()
    assert ensure_model(tmp_path, spec) == path
    assert Path(str(path) + ".verified").exists()


@pytest.mark.parametrize(
    "change, words",
    [
        ({"sha256": "0" * 64}, ["sha256", "expected " + "0" * 64, "got " + hashlib.sha256(b"".join(PART_BYTES)).hexdigest()]),
        ({"size": 999}, ["size", "expected 999 bytes", f"got {sum(map(len, PART_BYTES)):,}"]),
    ],
)
def test_mismatch_raises_and_leaves_nothing(tmp_path, parts, change, words):
    models = tmp_path / "models"
    with pytest.raises(ModelIntegrityError) as info:
        ensure_model(models, fake_spec(parts, **change))
    for word in words:
        assert word in str(info.value)
    assert list(models.iterdir()) == []


def test_missing_part_package_names_the_package(tmp_path, parts):
    spec = fake_spec(parts[:1] + ("theseus-no-such-part", parts[2]), parts_version="1.2.3")
    with pytest.raises(ModelMissingError, match=r"pip install theseus-no-such-part==1\.2\.3"):
        ensure_model(tmp_path, spec)
    assert not (tmp_path / "tiny.gguf").exists()


def test_missing_part_file(tmp_path, parts):
    with pytest.raises(ModelMissingError, match="part03.bin"):
        ensure_model(tmp_path / "m", fake_spec(parts[:2] + (tmp_path / "part03.bin",)))


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path, parts):
    stale = tmp_path / ".tiny.gguf.999999999.x1.tmp"
    mine = tmp_path / f".tiny.gguf.{os.getpid()}.x2.tmp"
    stale.write_bytes(b"junk")
    mine.write_bytes(b"busy")
    ensure_model(tmp_path, fake_spec(parts))
    assert not stale.exists() and mine.exists()


def test_default_model_parts_are_installed():
    paths = [part_path(part) for part in DEFAULT_MODEL.parts]
    assert [p.name for p in paths] == [f"part{i:02}.bin" for i in range(1, 7)]
    assert sum(p.stat().st_size for p in paths) == DEFAULT_MODEL.size


@pytest.mark.model
def test_default_model_is_assembled_and_verified(real_model):
    assert real_model.stat().st_size == DEFAULT_MODEL.size
    assert resolve_model_path(real_model) == real_model


def test_resolve_model_path_errors(tmp_path):
    with pytest.raises(ModelMissingError, match="not found"):
        resolve_model_path(tmp_path / "nope.gguf")
    with pytest.raises(ModelMissingError, match="not a file"):
        resolve_model_path(tmp_path)
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 zip, not a model")
    with pytest.raises(ModelIntegrityError, match="not a GGUF"):
        resolve_model_path(fake)


def test_a_backend_closed_while_its_model_is_assembled_stops_and_leaves_nothing(tmp_path, parts):
    """A server stopping mid-assembly (a first start) must not wait for the whole copy and its fsync."""
    import asyncio

    from theseus.llm import EmbeddedBackend

    backend = EmbeddedBackend(tmp_path / "models", spec=fake_spec(parts))
    backend._closed = True  # as close() marks it first, while the load job still runs
    backend._load()
    assert backend.status().state == "error" and "closed while assembling" in backend.status().detail
    assert list((tmp_path / "models").iterdir()) == []  # no half-written model, no temp file
    asyncio.run(backend.close())
