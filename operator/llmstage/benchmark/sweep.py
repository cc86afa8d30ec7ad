"""The benchmark Job's program: GuideLLM at each concurrency level, one after the other.

    python -m llmstage.benchmark.sweep --target URL --model NAME --levels 1,2,4 \\
        --prompt-tokens 256 --output-tokens 128 --duration 30 --tokenizer DIR

Runs in the benchmark image (images/benchmark/Dockerfile) with the standard library only. The
API key, when the service has one, comes from $LLMSTAGE_API_KEY (the Job's secretKeyRef) and
goes to GuideLLM as GUIDELLM__OPENAI__API_KEY (guidellm/config.py, OpenAISettings.api_key).

One `guidellm benchmark run --rate-type concurrent --rate N` per level rather than one run of
all levels: each level then reports as it ends (the CLI shows these lines as progress), is
bounded by its own --max-seconds, and a level that fails still leaves the others measured.

GuideLLM 0.3.1 writes the request headers, the Authorization header with the key included, into
its report (worker.backend_info.headers) and into the summary it prints at the end. So it runs
with --disable-console-outputs, its report never leaves the pod, and anything of its output
shown on failure has the key replaced. stdout carries only lines for the CLI:

    llmstage-benchmark: <progress>
    llmstage-benchmark-result: <one line of JSON: the tool, start and end, each level's figures>
    llmstage-benchmark-error: <why it stopped>
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmstage.benchmark import guidellm_report

PROGRESS = "llmstage-benchmark: "
RESULT = "llmstage-benchmark-result: "
ERROR = "llmstage-benchmark-error: "
API_KEY_ENV = "LLMSTAGE_API_KEY"
# Requests that run while a level starts are warm-up, not counted (GuideLLM --warmup-percent).
WARMUP_FRACTION = 0.1
# Synthetic prompts GuideLLM prepares per level; a level that uses them all ends early.
SAMPLES = 1000


def emit(prefix: str, text: str) -> None:
    print(prefix + text, flush=True)


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[api key]") if secret else text


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def guidellm_command(args: argparse.Namespace, level: int, output: Path) -> list[str]:
    """guidellm 0.3.1's `benchmark run` options (guidellm/__main__.py)."""
    return [
        args.guidellm,
        "benchmark",
        "run",
        "--target",
        args.target,
        "--model",
        args.model,
        "--processor",
        args.tokenizer,
        "--data",
        f"prompt_tokens={args.prompt_tokens},output_tokens={args.output_tokens},samples={SAMPLES}",
        "--rate-type",
        "concurrent",
        "--rate",
        str(level),
        "--max-seconds",
        str(args.duration),
        "--warmup-percent",
        str(WARMUP_FRACTION),
        "--output-sampling",
        "20",
        "--disable-progress",
        "--disable-console-outputs",
        "--output-path",
        str(output),
    ]


def guidellm_env(api_key: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        # Chat completions, as the service's clients send them (GuideLLM's default is completions).
        "GUIDELLM__PREFERRED_ROUTE": "chat_completions",
        # GuideLLM caps a chat completion's output with max_completion_tokens, which Ollama 0.17.4
        # ignores (openai/openai.go reads max_tokens only, as num_predict): its answers then ran
        # to the end of the story. vLLM takes max_tokens as well.
        "GUIDELLM__OPENAI__MAX_OUTPUT_KEY": json.dumps(
            {"text_completions": "max_tokens", "chat_completions": "max_tokens"}
        ),
        "HF_HUB_OFFLINE": "1",  # the tokenizer is local; never ask the Hub
        # GuideLLM's scheduler polls its queues every 0.1 ms (default_async_loop_sleep) and starts
        # up to max(cpus - 1, 10) worker processes: on a node it shares with the server it took
        # the CPU the server was being measured on. One process sends any number of concurrent
        # requests (asyncio, HTTP); polling every millisecond delays a request by at most that.
        "GUIDELLM__MAX_WORKER_PROCESSES": "1",
        "GUIDELLM__DEFAULT_ASYNC_LOOP_SLEEP": "0.001",
    }
    env.pop(API_KEY_ENV, None)
    if api_key:
        env["GUIDELLM__OPENAI__API_KEY"] = api_key
    return env


def warm_up(target: str, model: str, api_key: str | None, timeout: float) -> None:
    """One short chat completion before the sweep: loads the model if it is not loaded, and
    shows a wrong key or model name as one clear answer instead of a level full of errors."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4}
    ).encode()
    request = urllib.request.Request(
        target.rstrip("/") + "/chat/completions", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:300]
        hint = " (the API key was refused)" if err.code in (401, 403) else ""
        raise RuntimeError(f"{target} answered HTTP {err.code}{hint}: {redact(detail, api_key)}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise RuntimeError(f"{target} did not answer: {redact(str(reason), api_key)}") from None


def describe(level: dict[str, Any]) -> str:
    requests = level["requests"]
    ttft, itl = level["timeToFirstTokenMs"], level["interTokenLatencyMs"]
    return (
        f"{level['requestsPerSecond']:.2f} requests/s, {level['outputTokensPerSecond']:.1f} output tokens/s, "
        f"TTFT p50 {ttft['p50']:.0f} ms p99 {ttft['p99']:.0f} ms, ITL p50 {itl['p50']:.1f} ms; "
        f"{requests['completed']} completed, {requests['incomplete']} unfinished at the end, "
        f"{requests['errored']} errors"
    )


def run_level(args: argparse.Namespace, level: int, api_key: str | None) -> dict[str, Any]:
    output = Path(args.work_dir) / f"level-{level}.json"
    done = subprocess.run(
        guidellm_command(args, level, output),
        env=guidellm_env(api_key),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not output.exists():
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-5:])
        raise RuntimeError(f"guidellm exited {done.returncode} at {level} users: {redact(tail, api_key)}")
    report = json.loads(output.read_text())
    (measured,) = guidellm_report.levels_from_report(report)
    errors = guidellm_report.first_errors(report)
    if errors:
        measured["errors"] = [redact(e, api_key) for e in errors]
    if args.keep_reports:
        # For fixtures only (hack/benchmark_fixture.py): never in a pod, the report holds the key.
        Path(args.keep_reports).mkdir(parents=True, exist_ok=True)
        (Path(args.keep_reports) / output.name).write_text(redact(output.read_text(), api_key))
    return measured


def parse_levels(text: str) -> list[int]:
    levels = sorted({int(v) for v in text.split(",") if v.strip()})
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: levels are concurrent users, each at least 1")
    return levels


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="the OpenAI base URL, e.g. http://NAME.NS.svc:8000/v1")
    p.add_argument("--model", required=True, help="the model name clients send")
    p.add_argument("--levels", type=parse_levels, required=True, help="concurrency levels, e.g. 1,2,4")
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--output-tokens", type=int, default=128)
    p.add_argument("--duration", type=float, default=30.0, help="seconds per level")
    p.add_argument("--tokenizer", required=True, help="Hugging Face tokenizer directory for the prompts")
    p.add_argument("--work-dir", default="/tmp/benchmark")
    p.add_argument("--guidellm", default="guidellm")
    p.add_argument("--warm-up-timeout", type=float, default=300.0)
    p.add_argument("--keep-reports", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    api_key = os.environ.get(API_KEY_ENV) or None
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    started = now()
    levels: list[dict[str, Any]] = []
    try:
        emit(PROGRESS, f"warming up: one request to {args.target} for model {args.model}")
        t0 = time.monotonic()
        warm_up(args.target, args.model, api_key, args.warm_up_timeout)
        emit(PROGRESS, f"the service answered in {time.monotonic() - t0:.1f} s")
        for i, level in enumerate(args.levels, 1):
            emit(
                PROGRESS,
                f"level {i}/{len(args.levels)}: {level} concurrent user(s) for {args.duration:g} s "
                f"({args.prompt_tokens} prompt tokens, {args.output_tokens} output tokens per request)",
            )
            measured = run_level(args, level, api_key)
            levels.append(measured)
            emit(PROGRESS, f"level {i}/{len(args.levels)}: {level} user(s): {describe(measured)}")
    except (RuntimeError, guidellm_report.ReportError, ValueError, OSError) as err:
        emit(ERROR, " ".join(str(err).split()))
        if not levels:
            return 1
    result = {
        "tool": f"guidellm {guidellm_report.GUIDELLM_VERSION}",
        "startedAt": started,
        "finishedAt": now(),
        "levels": levels,
    }
    emit(RESULT, json.dumps(result, separators=(",", ":")))
    return 0 if len(levels) == len(args.levels) else 1


if __name__ == "__main__":
    sys.exit(main())
