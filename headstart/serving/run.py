"""Running the app under uvicorn: one process by default (torch already uses every core, and the
micro-batcher fills them), or ``workers`` processes started by uvicorn from an app factory that
reads the configuration from the environment (each process loads its own copy of the models)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from headstart.serving.limits import Limits

ENV = "HEADSTART_SERVE_CONFIG"


@dataclass
class ServeConfig:
    """What to serve and how: bundles by name, limits, batching, the API key (never logged)."""

    bundles: dict[str, str]
    limits: dict[str, int] = field(default_factory=dict)
    max_batch: int = 32
    max_wait_ms: float = 5.0
    api_key: str | None = field(default=None, repr=False)
    device: str | None = None

    @classmethod
    def from_cli(cls, paths: list[Path], names: list[str], *, api_key_file: Path | None = None,
                 device: str | None = None, max_batch: int = 32, max_wait_ms: float = 5.0,
                 **limits: int) -> "ServeConfig":
        if names and len(names) != len(paths):
            raise ValueError(f"{len(names)} --name for {len(paths)} bundles: give one per bundle, or none")
        names = names or [Path(p).resolve().name for p in paths]
        if len(set(names)) != len(names):
            raise ValueError(f"two bundles share a name ({', '.join(names)}): set --name for each")
        for p in paths:
            if not (Path(p) / "headstart.json").exists():
                raise FileNotFoundError(f"{p}: not a headstart bundle (no headstart.json)")
        key = None
        if api_key_file is not None:
            key = Path(api_key_file).read_text(encoding="utf-8").strip()
            if not key:
                raise ValueError(f"{api_key_file}: the API key file is empty")
        Limits(**limits)  # validated here, before any model loads
        return cls({n: str(Path(p).resolve()) for n, p in zip(names, paths)}, dict(limits), max_batch,
                   max_wait_ms, key, device)

    def app(self) -> Any:
        from headstart.serving.app import create_app

        return create_app(self.bundles, limits=Limits(**self.limits), api_key=self.api_key,
                          max_batch=self.max_batch, max_wait_ms=self.max_wait_ms, device=self.device)


def app_from_environment() -> Any:
    """uvicorn's factory for ``workers > 1``: the configuration travels in ``$HEADSTART_SERVE_CONFIG``."""
    return ServeConfig(**json.loads(os.environ[ENV])).app()


def run_server(config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests are answered before the process exits."""
    import uvicorn

    common: dict[str, Any] = {"host": host, "port": port, "timeout_graceful_shutdown": 30, "log_level": "info"}
    print(f"headstart: serving {', '.join(config.bundles)} on http://{host}:{port}/ (API docs: /docs)", flush=True)
    if workers <= 1:
        uvicorn.run(config.app(), **common)
        return
    os.environ[ENV] = json.dumps(asdict(config))
    uvicorn.run("headstart.serving.run:app_from_environment", factory=True, workers=workers, **common)
