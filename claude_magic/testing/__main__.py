"""Command line for the stand-in.

    python -m claude_magic.testing serve [--port 8765] [--delay 0.02]
    python -m claude_magic.testing run [--delay S] -- jupyter lab notebooks/
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading

from .stand_in import StandIn

OFFLINE_KEY = "sk-ant-offline-stand-in"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claude_magic.testing", description="The offline stand-in for the Anthropic API.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the stand-in until Ctrl-C")
    run = commands.add_parser("run", help="run a command with ANTHROPIC_BASE_URL pointing at the stand-in")
    for command in (serve, run):
        command.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: one the OS picks)")
        command.add_argument("--delay", type=float, default=0.02, help="seconds between streamed pieces (default 0.02)")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    with StandIn(port=args.port, delay=args.delay) as server:
        if args.command == "serve":
            print(f"stand-in listening: export ANTHROPIC_BASE_URL={server.base_url} ANTHROPIC_API_KEY={OFFLINE_KEY}", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                return 0
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("run needs a command after --")
        env = {**os.environ, "ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": OFFLINE_KEY}
        env.pop("ANTHROPIC_AUTH_TOKEN", None)
        print(f"claude-magic: {cmd[0]} talks to the offline stand-in at {server.base_url}", file=sys.stderr, flush=True)
        try:
            return subprocess.call(cmd, env=env)
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
