"""Run a module under tracemalloc and dump where its live memory was allocated on SIGUSR1.

python bench/memprofile.py OUT.txt -m llmstage.cli run ...   (bench.run --profile tracemalloc)
"""

from __future__ import annotations

import runpy
import signal
import sys
import tracemalloc
from types import FrameType


def main() -> None:
    out, flag, module, *rest = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: memprofile.py OUT -m MODULE [ARGS...]")
    tracemalloc.start(8)

    def dump(_sig: int, _frame: FrameType | None) -> None:
        snapshot = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        with open(out, "w") as f:
            f.write(f"traced now {current / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB\n")
            for key in ("filename", "traceback"):
                f.write(f"\n--- top by {key}\n")
                for stat in snapshot.statistics(key)[:40]:
                    f.write(f"{stat.size / 2**20:8.2f} MiB {stat.count:8d} blocks  ")
                    f.write("\n      ".join(stat.traceback.format()[-6:]) + "\n")

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
