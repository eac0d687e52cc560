"""One Config for the whole process, read from environment variables and CLI flags."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5001


@dataclass(frozen=True)
class Config:
    """Where Theseus keeps its data and how it serves and thinks."""

    data_dir: Path = Path("data")
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    llm: str = "embedded"  # backend spec, see theseus.llm.spec
    models_dir: Path | None = None  # default: data_dir / "models"
    knowledge: bool = False  # build and watch the knowledge index in the background while serving
    embedder: str = ""  # embedder spec, see theseus.knowledge.embedders; "" follows the LLM backend
    allowed_hosts: tuple[str, ...] = ()  # more Host names to answer to (e.g. behind a proxy), see security.py
    token: str = field(default="", repr=False)  # the access token beyond loopback; "" makes a random one at start
    temperature: float = 0.7  # how freely Chip words its chat replies: 0 always picks the likeliest word
    extra: dict = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "theseus.db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def model_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def user_apps_dir(self) -> Path:
        return self.data_dir / "apps"

    @property
    def user_workflows_dir(self) -> Path:
        return self.data_dir / "workflows"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Config":
        """Build a Config from THESEUS_* variables; explicit overrides win."""
        env = os.environ if env is None else env
        values: dict = {}
        if env.get("THESEUS_DATA"):
            values["data_dir"] = Path(env["THESEUS_DATA"])
        if env.get("THESEUS_HOST"):
            values["host"] = env["THESEUS_HOST"]
        if env.get("THESEUS_PORT"):
            values["port"] = _port(env["THESEUS_PORT"])
        if env.get("THESEUS_LLM"):
            values["llm"] = env["THESEUS_LLM"]
        if env.get("THESEUS_MODELS"):
            values["models_dir"] = Path(env["THESEUS_MODELS"])
        if env.get("THESEUS_EMBED"):
            values["embedder"] = env["THESEUS_EMBED"]
        if env.get("THESEUS_ALLOWED_HOSTS"):
            values["allowed_hosts"] = _hosts(env["THESEUS_ALLOWED_HOSTS"])
        if env.get("THESEUS_TEMPERATURE"):
            values["temperature"] = _temperature(env["THESEUS_TEMPERATURE"])
        if env.get("THESEUS_TOKEN"):
            values["token"] = _token(env["THESEUS_TOKEN"])
        # Config() in code (tests, evals) indexes nothing at start; the command line does, unless THESEUS_INDEX=0
        values["knowledge"] = env.get("THESEUS_INDEX", "1").strip().lower() not in ("0", "no", "off", "false")
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return cls(**values)


def _token(text: str) -> str:
    """THESEUS_TOKEN: a secret long enough not to be guessed."""
    if len(text.strip()) < 16:
        raise ValueError("THESEUS_TOKEN must be at least 16 characters long (leave it unset for a random one)")
    return text.strip()


def _temperature(text: str) -> float:
    try:
        temperature = float(text)
    except ValueError:
        raise ValueError(f"THESEUS_TEMPERATURE must be a number, not {text!r}") from None
    if not 0 <= temperature <= 2:
        raise ValueError(f"THESEUS_TEMPERATURE must be between 0 and 2, not {temperature}")
    return temperature


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"THESEUS_PORT must be a number, not {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"THESEUS_PORT must be between 1 and 65535, not {port}")
    return port


def _hosts(text: str) -> tuple[str, ...]:
    """THESEUS_ALLOWED_HOSTS: comma-separated names or addresses, each with an optional port."""
    hosts = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in hosts:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+(:\d+)?|\[[0-9a-fA-F:.]+\](:\d+)?|[0-9a-fA-F:]+", name):
            raise ValueError(f"THESEUS_ALLOWED_HOSTS lists host names (name or name:port, comma-separated), "
                             f"not {name!r}")
    return hosts
