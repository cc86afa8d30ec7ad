#!/usr/bin/env python3
"""Run a command N times in a row while a CPU hog keeps every core busy; stop at the first failure.

    python3 hack/under_load.py --runs 3 -- make test

The hog is one busy-looping process per core at the same priority as the command, so the
command's processes (API server, operator, kubelet, pytest) get about half the CPU they would
alone. It proves that the test suite waits for conditions rather than for time: three green
`make test` runs in a row this way are the check, recorded in docs/reliability.md.
Prints one line per run (exit code, wall time, 1-minute load average at the end).
Standard library only: runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def spin() -> None:
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    cores = os.cpu_count() or 2
    parser.add_argument("--hogs", type=int, default=cores, help="busy processes (default: 1 per core)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --, e.g. -- make test")

    hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    results: list[str] = []
    code = 0
    try:
        for run in range(1, args.runs + 1):
            start = time.monotonic()
            code = subprocess.call(command)
            line = (
                f"under-load run {run}/{args.runs}: exit {code}, {time.monotonic() - start:.0f} s, "
                f"{args.hogs} hogs, load average {os.getloadavg()[0]:.1f}"
            )
            results.append(line)
            print(line, flush=True)
            if code:
                break
    finally:
        for hog in hogs:
            hog.terminate()
    print("\n".join(results), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
