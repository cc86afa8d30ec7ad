"""Run a module under tracemalloc and dump where its live memory was allocated on SIGUSR1.

python bench/memprofile.py OUT.txt -m llmstage.cli run ...   (bench.run --profile tracemalloc)
"""

from __future__ import annotations

import gc
import runpy
import signal
import sys
import tracemalloc
from collections import Counter
from types import FrameType


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        return f"dict with keys {sorted(map(str, obj))[:6]}"
    if isinstance(obj, FrameType):
        return f"frame {obj.f_code.co_filename.rsplit('/', 2)[-2:]}:{obj.f_code.co_name}"
    return type(obj).__qualname__


def json_holders() -> Counter[str]:
    """For the dicts and lists that json's decoder allocated and that are still alive, what
    refers to them from outside parsed JSON (a cache, a queue, a frame)."""
    parsed = [
        o
        for o in gc.get_objects()
        if isinstance(o, dict | list)
        and (tb := tracemalloc.get_object_traceback(o)) is not None
        and "json/decoder.py" in tb[-1].filename
    ]
    ids = {id(o) for o in parsed}
    holders: Counter[str] = Counter()
    sample = parsed[:: max(1, len(parsed) // 2000)]
    for o in sample:
        for ref in gc.get_referrers(o):
            if id(ref) not in ids and ref is not parsed and ref is not sample:
                holders[_describe(ref)] += 1
    holders[f"(parsed containers alive: {len(parsed)})"] = 0
    return holders


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
                    f.write("\n      ".join(stat.traceback.format()[-16:]) + "\n")
            f.write("\n--- who holds the containers json.loads made (what keeps parsed bodies alive)\n")
            for holder, count in json_holders().most_common(30):
                f.write(f"{count:8d}  {holder}\n")

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
