"""Command line: ``skflow demo`` (more commands: see issue 6)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skflow", description="Normalizing-flow density estimation")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="compare FlowDensity, GaussianMixture and KernelDensity on shipped data")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo()
    return 0
