"""``python -m vcluster_lab.server``: run the control plane in the foreground (tests and debugging)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vcluster_lab.server", description=__doc__)
    p.add_argument("--home", type=Path, default=Path(os.environ.get("VCLUSTER_LAB_HOME", ".lab")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    p.add_argument("--driver", default="podman", choices=["podman", "records"])
    p.add_argument("--no-tls", action="store_true", help="plain HTTP")
    p.add_argument("--fault", action="append", default=[], metavar="KEY=VALUE",
                   help="start-up fault switch, e.g. latency_ms=50 (repeatable)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faults = {}
    for item in args.fault:
        key, _, value = item.partition("=")
        faults[key] = value.split(",") if key in ("dead_nodes",) else value

    def ready(port: int) -> None:
        print(f"LISTENING {port}", flush=True)
    serve(args.home, args.host, args.port, args.driver, not args.no_tls, faults=faults, ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
