"""`python -m gateway [--config PATH]`: serve the gateway with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from config.loader import ConfigError, load_settings
from gateway.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--config", default="config/default.yaml", help="YAML config file")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"rosetta: invalid configuration: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.server.host,
        port=args.port or settings.server.port,
        log_level=args.log_level,
        loop="uvloop",
        http="httptools",
        access_log=False,
        # WebSocket messages up to the body limit get a 413 error frame, beyond twice it a close 1009;
        # frames are small JSON, where compressing cost 0.6-1.5 ms of CPU a turn (bench/README.md).
        ws_max_size=2 * settings.server.max_body_bytes,
        ws_per_message_deflate=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
