"""A real llama.cpp `llama-server` (SmolLM2-135M-Instruct) with Rosetta in front, for the whole session.

`make test` builds and caches the server first (deploy/local-model.sh); running pytest alone without that
cache skips these tests with the reason.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.loader import parse_settings
from gateway.app import create_app
from tests.fakes.server import serve

ROOT = Path(__file__).parents[2]
API_KEY = "e2e-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _local_model_paths() -> list[str] | None:
    script = ROOT / "deploy" / "local-model.sh"
    result = subprocess.run(["bash", str(script), "locate"], capture_output=True, text=True, check=False)
    return result.stdout.split() if result.returncode == 0 else None


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    paths = _local_model_paths()
    if paths is None:
        pytest.skip("llama-server is not built: run `make local-model` (make test does it first)")
    binary, model, template = paths
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "-m",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            "4096",
            "-np",
            "2",
            "-t",
            "2",
            "--jinja",
            "--no-webui",
            "--chat-template-file",
            template,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("llama-server did not become healthy")
            time.sleep(0.2)
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def local_gateway(llama_server: str) -> Iterator[str]:
    settings = parse_settings(
        {
            "keys": [{"key": API_KEY}],
            "providers": {
                "local": {
                    "kind": "chat_completions",
                    "base_url": llama_server,
                    "dialect": {"preset": "llama.cpp"},
                },
                "local-messages": {"kind": "anthropic", "base_url": llama_server},
            },
            "models": {
                name: {"provider": name, "model": "smollm2", "defaults": {"max_output_tokens": 48}}
                for name in ("local", "local-messages")
            },
        },
        {},
    )
    with serve(create_app(settings)) as base_url:
        yield f"{base_url}/v1"
