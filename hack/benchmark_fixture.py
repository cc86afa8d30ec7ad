#!/usr/bin/env python3
"""The real GuideLLM reports behind tests/unit/fixtures/benchmark/: how they were made.

    python3 hack/benchmark_fixture.py [--levels 1,2,4,8] [--duration 15] [--out DIR]

Runs on the build host, no cluster: the host-built Ollama (hack/tools/ollama, the version the
operator pins) serves SmolLM2-135M from the hash-pinned GGUF (hack/images.py model_gguf) on a
private loopback port with OLLAMA_NUM_PARALLEL=4 (Ollama's old default, the article's "caps
parallel requests at 4"); the benchmark Job's own program (llmstage.benchmark.sweep) drives it
with GuideLLM from requirements/benchmark.txt (a venv in .tools/benchmark) and the tokenizer the
image makes (images/benchmark/make_tokenizer.py), keeping each level's GuideLLM report
(--keep-reports) and its progress lines. The figures depend on the machine and its load: the
unit tests check the parsing of what GuideLLM wrote and the knee of these figures, not a speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import images

REPO = images.REPO
VENV = REPO / ".tools" / "benchmark"
LOCK = REPO / "requirements" / "benchmark.txt"
OUT = REPO / "tests" / "unit" / "fixtures" / "benchmark"


def venv() -> Path:
    """GuideLLM as the image installs it: the lock's files, hashes checked, nothing resolved."""
    stamp = VENV / ".installed-from"
    want = images.sha256_file(LOCK)
    if not (stamp.exists() and stamp.read_text() == want):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin/pip"), "install", "--quiet", "--require-hashes", "--no-deps",
             "--only-binary=:all:", "-r", str(LOCK)],
            check=True,
        )  # fmt: skip
        stamp.write_text(want)
    return VENV / "bin"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--duration", default="15")
    ap.add_argument("--prompt-tokens", default="128")
    ap.add_argument("--output-tokens", default="64")
    ap.add_argument(
        "--num-thread",
        type=int,
        help="Ollama's num_thread (a Modelfile PARAMETER): 1 keeps ggml's threads from spinning against "
        "each other on a loaded machine",
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    bin_dir = venv()
    ollama = images.tool("ollama")
    with tempfile.TemporaryDirectory(prefix="llmstage-benchmark-fixture-") as tmp:
        work = Path(tmp)
        gguf = images.model_gguf(work)
        tokenizer = work / "tokenizer"
        subprocess.run(
            [
                str(bin_dir / "python"),
                str(REPO / "images/benchmark/make_tokenizer.py"),
                str(gguf),
                str(tokenizer),
            ],
            check=True,
        )
        port = images.free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work / "home"),
            "OLLAMA_MODELS": str(work / "models"),
            "OLLAMA_HOST": f"127.0.0.1:{port}",
            "OLLAMA_NUM_PARALLEL": "4",
            "OLLAMA_KEEP_ALIVE": "-1",
        }
        with open(work / "serve.log", "wb") as log:
            server = subprocess.Popen([str(ollama), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=2).read()
                    break
                except (urllib.error.URLError, OSError):
                    if server.poll() is not None or time.monotonic() > deadline:
                        log_text = (work / "serve.log").read_text()
                        raise SystemExit(f"ollama serve did not start:\n{log_text}") from None
                    time.sleep(0.2)
            threads = f"PARAMETER num_thread {args.num_thread}\n" if args.num_thread else ""
            (work / "Modelfile").write_text(f"FROM {gguf}\n{threads}")
            subprocess.run([str(ollama), "create", images.MODEL_NAME, "-f", str(work / "Modelfile")],
                           env=env, check=True, capture_output=True)  # fmt: skip
            if args.out.exists():
                shutil.rmtree(args.out)
            args.out.mkdir(parents=True)
            sweep = subprocess.run(
                [str(bin_dir / "python"), "-m", "llmstage.benchmark.sweep",
                 "--target", f"http://127.0.0.1:{port}/v1", "--model", images.MODEL_NAME,
                 "--levels", args.levels, "--duration", args.duration,
                 "--prompt-tokens", args.prompt_tokens, "--output-tokens", args.output_tokens,
                 "--tokenizer", str(tokenizer), "--work-dir", str(work / "reports"),
                 "--guidellm", str(bin_dir / "guidellm"), "--keep-reports", str(args.out)],
                env={**os.environ, "PYTHONPATH": str(REPO / "operator"), "LLMSTAGE_API_KEY": "fixture-key"},
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            (args.out / "sweep.log").write_text(sweep.stdout)
            print(sweep.stdout, end="")
            version = subprocess.run([str(ollama), "--version"], env=env, capture_output=True, text=True)
            machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
            (args.out / "MADE-WITH.txt").write_text(
                f"made by hack/benchmark_fixture.py --levels {args.levels} --duration {args.duration} "
                f"--prompt-tokens {args.prompt_tokens} --output-tokens {args.output_tokens}"
                + (f" --num-thread {args.num_thread}" if args.num_thread else "")
                + "\n"
                f"server: {version.stdout.strip() or version.stderr.strip()} (hack/tools/ollama, CPU), "
                f"{images.MODEL_NAME} from {images.MODEL_WHEEL}, OLLAMA_NUM_PARALLEL=4, loopback\n"
                f"client: guidellm from requirements/benchmark.txt, llmstage.benchmark.sweep\n"
                f"machine: {machine}, shared with other builds (load average at the end: "
                f"{os.getloadavg()[0]:.1f})\n"
                "the API key sent was 'fixture-key' (Ollama ignores it); GuideLLM writes it into its "
                "report, --keep-reports replaced it with '[api key]'\n"
            )
            return sweep.returncode
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
