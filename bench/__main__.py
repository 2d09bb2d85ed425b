"""Every benchmark in bench/, one after another, each in its own process: `make bench`.

    .venv/bin/python -m bench [--only processing,fanout] [--skip webhook_ingest] [--all] [--list]

A benchmark whose module is not there is left out. One that fails does not stop the others; the
exit status is 1 if any failed. Each prints its own ratios; their short default runs are used
here (run a module by itself, with its flags, for longer runs). PostgreSQL is BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432/postgres); scratch databases are made there.

Beside the benchmarks, two demos that print what happens rather than measure it:
`python -m bench.show_breaker` (the circuit breaker under a 429) and `python -m bench.show_send_queue`
(the send queue at Telegram's limits, from two processes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.ratios import Ratio, parse

HERE = Path(__file__).parent

# (module, arguments, whether it runs by default). Ingest is measured on both databases.
JOBS: list[tuple[str, list[str], bool]] = [
    ("webhook_ingest", ["--ingest-only"], True),
    ("webhook_ingest", ["--ingest-only", "--postgres"], True),
    ("processing", [], True),
    ("event_path", [], True),  # the router and executor in-process: CPU per event, 1 and 10 installs
    ("graphql_reads", [], True),
    ("fanout", [], True),
    ("render", [], True),  # a push's render: the app's executor against Strawberry's own, CPU
    ("memory", [], True),
    ("analytics_read", [], True),
    ("event_loop", [], True),
    ("query_memory", [], False),  # about 3.5 minutes: --all
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated module names to run")
    parser.add_argument("--skip", default="", help="comma-separated module names to leave out")
    parser.add_argument("--all", action="store_true", help="the slow ones too")
    parser.add_argument("--list", action="store_true", help="print what would run, and stop")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    skip = set(filter(None, args.skip.split(",")))
    jobs = [
        (module, job_args)
        for module, job_args, default in JOBS
        if (HERE / f"{module}.py").exists()
        and module not in skip
        and (module in only if only is not None else default or args.all)
    ]
    if args.list:
        for module, job_args in jobs:
            print(" ".join(["python -m", f"bench.{module}", *job_args]))
        return
    results: list[tuple[str, int, float]] = []
    ratios: list[Ratio] = []
    for module, job_args in jobs:
        title = " ".join([f"bench.{module}", *job_args])
        print(f"\n=== {title}", flush=True)
        started = time.monotonic()
        code, reported = run_job([sys.executable, "-m", f"bench.{module}", *job_args])
        ratios.extend(reported)
        results.append((title, code, time.monotonic() - started))
    print("\n=== summary")
    for title, code, seconds in results:
        print(f"{'ok    ' if code == 0 else f'FAILED ({code})'}  {seconds:6.0f} s  {title}")
    if ratios:
        print("\n=== the throughput table's ratios, each against its reference in the same run")
        width = max(len(ratio.label) for ratio in ratios)
        for ratio in ratios:
            verdict = {True: "met", False: "NOT MET", None: ""}[ratio.met]
            print(f"{ratio.label:<{width}}  {ratio.value:8.3g}  goal {ratio.goal:<12} {verdict}")
    if any(code != 0 for _, code, _ in results):
        raise SystemExit(1)


def run_job(command: list[str]) -> tuple[int, list[Ratio]]:
    """Runs one benchmark, passing its output through, and returns its exit status and its ratios."""
    reported: list[Ratio] = []
    with subprocess.Popen(command, env=os.environ, stdout=subprocess.PIPE, text=True, bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            ratio = parse(line)
            if ratio is not None:
                reported.append(ratio)
    return process.returncode, reported


if __name__ == "__main__":
    main()
