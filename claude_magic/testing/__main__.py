"""Command line for the stand-in.

    python -m claude_magic.testing serve [--port 8765] [--delay 0.02]
    python -m claude_magic.testing run [--delay S] -- jupyter lab notebooks/
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from .child import run_command, signals_held
from .stand_in import StandIn

OFFLINE_KEY = "sk-ant-offline-stand-in"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claude_magic.testing", description="The offline stand-in for the Anthropic API.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the stand-in until Ctrl-C")
    run_parser = commands.add_parser("run", help="run a command with ANTHROPIC_BASE_URL pointing at the stand-in")
    for command in (serve_parser, run_parser):
        command.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: one the OS picks)")
        command.add_argument("--delay", type=float, default=0.02, help="seconds between streamed pieces (default 0.02)")
    run_parser.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.port, args.delay)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("run needs a command after --")
    return run(cmd, args.port, args.delay)


def serve(port: int, delay: float) -> int:
    """Serve until Ctrl-C, after printing the environment that points a shell at the stand-in."""
    with StandIn(port=port, delay=delay) as server:
        print(f"stand-in listening: export ANTHROPIC_BASE_URL={server.base_url} ANTHROPIC_API_KEY={OFFLINE_KEY}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


def run(cmd: list[str], port: int, delay: float) -> int:
    """Run ``cmd`` against a fresh stand-in, which serves until the command exits; exit with the command's code."""
    with signals_held(), StandIn(port=port, delay=delay) as server:
        env = {**os.environ, "ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": OFFLINE_KEY}
        env.pop("ANTHROPIC_AUTH_TOKEN", None)
        print(f"claude-magic: {cmd[0]} talks to the offline stand-in at {server.base_url}", file=sys.stderr, flush=True)
        try:
            return run_command(cmd, env)
        except OSError as error:
            print(f"claude-magic: can't run {cmd[0]}: {error.strerror}", file=sys.stderr, flush=True)
            return 126 if isinstance(error, PermissionError) else 127


if __name__ == "__main__":
    sys.exit(main())
