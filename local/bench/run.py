#!/usr/bin/env python3
"""`make bench`: what the functions cost where Lambda bills them, measured, written to
docs/benchmarks/bench.json and docs/benchmarks/bench.md (linked from docs/benchmarks.md).

    .venv/bin/python local/bench/run.py [--quick] [--rounds N] [--warm N] [--skip-build]

1. **Build**: `infra/build.sh` (what `make build` runs), for this machine's architecture (a
   copy of the declaration with `lambda.architecture` set to it: the figures say which), timed;
   cold when the release target directory did not exist before. Then hello world
   (local/bench/hello) with the same `cargo lambda build` flags and release profile.
   All of it in target/bench (BENCH_TARGET_DIR), not in `make build`'s target/lambda.
2. **Zip size** of the one zip every function is deployed from
   (`target/bench/lambda/bootstrap/bootstrap.zip`).
3. **Cold start** (local/bench/coldstart.py): for each round, for each function, hello world
   then the function (the one binary, its `_HANDLER` naming the function), each a fresh process
   behind a Lambda Runtime API on loopback with the function's own declared environment; init (spawn to first `GET /next`) and first invoke.
   AWS is the stub of local/bench/aws_stub.py, so a first request pays the SDK's real
   first-request costs without a network. Each function's init is reported as a ratio to
   hello world's (the median of per-round ratios), which holds on a noisy machine.
4. **Peak memory**: one process per function over init and `--warm` (100) invocations.
5. **Warm handler cost**: criterion (`cargo bench -p bootstrap --benches`),
   the work of `POST /orders`, `GET /orders/{id}`, `GET /products` and a saga step inside the
   function, without the network.
6. **Round trips** of every operation, as the last `make test` counted them
   (.local/round-trips.json, local/round_trips.py), the fraud scorer's DynamoDB requests per
   batch of 100 (.local/fraud-batch.json, functions/fraud/tests/batch.rs), and the local
   stack's throughput from the last `make soak` (docs/benchmarks/soak.json).

Everything runs on 127.0.0.1. BENCH_QUICK=1 (or --quick): 3 rounds, 20 warm invocations,
2 seconds of measurement per criterion benchmark.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import coldstart  # noqa: E402
import events  # noqa: E402
from aws_stub import AwsStub  # noqa: E402
from declaration import deployed_env, load  # noqa: E402

# `cargo lambda` is the cargo-lambda binary next to this Python (.venv/bin), as for the stack.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
# The bench builds in its own target directory (BENCH_TARGET_DIR, default target/bench), so
# the zips it builds for this machine's architecture never replace `make build`'s in
# target/lambda, which Terraform deploys.
TARGET = Path(os.environ.get("BENCH_TARGET_DIR") or ROOT / "target" / "bench").resolve()
HELLO_TARGET = TARGET / "hello"
LAST_COLD_BUILD = TARGET / "cold-build.json"
OUT = ROOT / "docs" / "benchmarks"
ARCH = {"x86_64": ("x86_64", "x86_64-unknown-linux-gnu", "--x86-64"),
        "aarch64": ("arm64", "aarch64-unknown-linux-gnu", "--arm64")}[platform.machine()]


def release_profile(manifest: Path) -> dict:
    return tomllib.loads(manifest.read_text())["profile"]["release"]


def check_profiles() -> dict:
    """Hello world is only a baseline if it is built the way the functions are."""
    ours, hello = release_profile(ROOT / "Cargo.toml"), release_profile(HERE / "hello" / "Cargo.toml")
    if ours != hello:
        sys.exit(f"bench: local/bench/hello/Cargo.toml's release profile {hello} is not the workspace's {ours}")
    return ours


def build_functions() -> dict:
    """infra/build.sh for this machine's architecture; seconds, and whether it was cold."""
    arch, triple, _ = ARCH
    cold = not (TARGET / triple / "release").exists()
    decl = load()
    decl["lambda"]["architecture"] = arch
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(decl, f)
    started = time.monotonic()
    subprocess.run(["bash", str(ROOT / "infra" / "build.sh")], cwd=ROOT, check=True,
                   env=dict(os.environ, DECLARATION=f.name, CARGO_TARGET_DIR=str(TARGET)))
    seconds = time.monotonic() - started
    os.unlink(f.name)
    build = {"seconds": round(seconds, 1), "cold": cold, "architecture": arch, "cores": os.cpu_count(),
             "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    if cold:  # kept: a later --skip-build run quotes the last cold build it measured
        LAST_COLD_BUILD.write_text(json.dumps(build) + "\n")
    return build


def build_hello() -> Path:
    _, triple, flag = ARCH
    subprocess.run(["cargo", "lambda", "build", "--release", flag, "--locked",
                    "--manifest-path", str(HERE / "hello" / "Cargo.toml")],
                   cwd=HERE / "hello", check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(HELLO_TARGET)))
    return binary(HELLO_TARGET, "hello-world")


def binary(target: Path, name: str) -> Path:
    """The release binary: where cargo leaves it, or where cargo lambda moved it."""
    for candidate in (target / ARCH[1] / "release" / name, target / "release" / name,
                      target / "lambda" / name / "bootstrap"):
        if candidate.exists():
            return candidate
    sys.exit(f"bench: no release binary {name} under {target}")


def deployed(decl: dict) -> str:
    """The package whose one binary every function runs (the declaration's lambda.package)."""
    return decl["lambda"]["package"]


def sizes(decl: dict) -> dict:
    """The one zip every function is deployed from, and its binary."""
    package = deployed(decl)
    z = TARGET / "lambda" / package / "bootstrap.zip"
    return {"package": package, "zip_bytes": z.stat().st_size if z.exists() else None,
            "binary_bytes": binary(TARGET, package).stat().st_size, "functions": len(decl["functions"])}


def answer_of(response: str | None) -> str | None:
    """What the function answered: the HTTP status of a route, else `ok`/`error`."""
    if not response:
        return None
    try:
        doc = json.loads(response)
    except ValueError:
        return "response"
    if isinstance(doc, dict) and "statusCode" in doc:
        return str(doc["statusCode"])
    if isinstance(doc, dict) and "errorType" in doc:
        return f"error {doc['errorType']}"
    return "response"


def bench_env(decl: dict, function: str) -> dict[str, str]:
    """The function's deployed environment, but for the payment provider's URL: loopback,
    where nothing listens (as the harness's AWS_ENDPOINT_URL), so nothing leaves the machine."""
    env = deployed_env(decl, function)
    if "PAYMENT_PROVIDER_URL" in env:
        env["PAYMENT_PROVIDER_URL"] = coldstart.DEFAULT_ENDPOINT_URL
    return env


def cold_starts(decl: dict, hello: Path, rounds: int, stub_url: str, logs: Path) -> dict:
    """Alternating hello world / function runs, `rounds` each, summarised per function."""
    subjects = []
    for f, spec in decl["functions"].items():
        event, accept_errors = events.event_for(spec, f)
        subjects.append(coldstart.Subject(f, binary(TARGET, deployed(decl)), event, bench_env(decl, f), accept_errors))
    result = coldstart.compare(subjects, coldstart.Subject("hello-world", hello, {"hello": "world"}, {}),
                               rounds, endpoint_url=stub_url, log_dir=logs)
    out = result["functions"]
    for f, s in out.items():
        s["kind"] = events.kind(decl["functions"][f])
        s["answer"] = answer_of(s.pop("last_response"))
    return out


def peak_memory(decl: dict, hello: Path, warm: int, stub_url: str, logs: Path) -> dict:
    out = {"hello-world": coldstart.measure(hello, {"hello": "world"}, {}, warm=warm, name="hello-world",
                                            endpoint_url=stub_url, log_dir=logs).peak_rss_kb}
    for f, spec in decl["functions"].items():
        event, accept_errors = events.event_for(spec, f)
        run = coldstart.measure(binary(TARGET, deployed(decl)), event, bench_env(decl, f), warm=warm, name=f,
                                endpoint_url=stub_url, log_dir=logs, accept_errors=accept_errors)
        out[f] = run.peak_rss_kb if run.ok else None
    return out


#: The criterion benchmarks of the handlers' work (functions/bootstrap/benches/*.rs).
CRITERION_PACKAGE = "bootstrap"


def criterion(quick: bool) -> dict:
    """`cargo bench` of the handlers' work, without the network; criterion's estimates of
    each benchmark (ns): the mean and median with their 95% confidence intervals."""
    args = ["--warm-up-time", "1", "--measurement-time", "2" if quick else "5"]
    # Criterion keeps every benchmark it ever ran under target/bench/criterion; only this
    # run's belong in the results.
    shutil.rmtree(TARGET / "criterion", ignore_errors=True)
    subprocess.run(["cargo", "bench", "--locked", "-p", CRITERION_PACKAGE, "--benches", "--", *args],
                   cwd=ROOT, check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(TARGET)))
    out = {}
    for meta in sorted((TARGET / "criterion").glob("**/new/benchmark.json")):
        estimates = json.loads((meta.parent / "estimates.json").read_text())
        name = json.loads(meta.read_text())["full_id"]
        out[name] = {stat: {"ns": round(estimates[stat]["point_estimate"], 1),
                            "ci95": [round(estimates[stat]["confidence_interval"][k], 1)
                                     for k in ("lower_bound", "upper_bound")]}
                     for stat in ("mean", "median")}
    return out


#: What the last `make test` measured of every operation's DynamoDB round trips
#: (local/round_trips.py check writes it).
ROUND_TRIPS = ROOT / ".local" / "round-trips.json"
#: The fraud scorer's DynamoDB requests per batch of 100, as the last `make test` counted them
#: (functions/fraud/tests/batch.rs, `a_batch_of_100_takes_one_read_and_a_few_transactions`).
FRAUD_BATCH = ROOT / ".local" / "fraud-batch.json"


def environment() -> dict:
    def out(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout.strip()

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "commit": out("git", "rev-parse", "--short", "HEAD"), "rustc": out("rustc", "--version"),
            "cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine()}


def render(results: dict) -> str:
    """docs/benchmarks/bench.md: the headline, then one row per function."""
    env, build, cs, mem, size = (results[k] for k in ("environment", "build", "cold_start", "peak_memory_kb", "sizes"))
    ratios = {f: s["init_ratio_median_of_pairs"] for f, s in cs.items() if s["init_ratio_median_of_pairs"]}
    peaks = {f: kb for f, kb in mem.items() if kb and f != "hello-world"}
    hello_init = statistics.median(s["hello_init_ms"]["median"] for s in cs.values() if s["hello_init_ms"]["n"])
    lines = [
        "# Benchmarks: `make bench`",
        "",
        f"Generated by `local/bench/run.py` on {env['date']} at commit {env['commit']}: {env['cpu']}, "
        f"{env['cores']} cores, {env['rustc']}; {results['rounds']} alternating rounds per function, "
        f"{results['warm']} warm invocations for memory. {build['architecture']} zips (this machine's "
        "architecture; the deployed default is arm64), release profile "
        f"`{json.dumps(results['profile'])}` plus what `cargo lambda build` adds (panic=abort, target-cpu).",
        "",
        f"- **Build** (`make build`'s `infra/build.sh`, {build['cores']} cores, "
        f"{'cold' if build['cold'] else 'incremental'}{', measured ' + build['date'] if build.get('reused') else ''}): "
        f"{build['seconds'] / 60:.1f} minutes: one binary (package `{size['package']}`) holding all "
        f"{size['functions']} functions, linked once.",
        f"- **Zip size**: {(size['zip_bytes'] or 0) / 1e6:.2f} MB, the one zip every function is deployed "
        f"from (binary {size['binary_bytes'] / 1e6:.2f} MB).",
        f"- **Init** as a ratio to hello world (median of per-round ratios): median "
        f"{statistics.median(ratios.values()):.2f}x, highest {max(ratios.values()):.2f}x "
        f"({max(ratios, key=ratios.get)}); hello world's own init here: {hello_init:.1f} ms.",
        f"- **Peak memory** over init and {results['warm']} invocations: highest "
        f"{max(peaks.values()) / 1024:.1f} MB ({max(peaks, key=peaks.get)}); hello world "
        f"{(mem['hello-world'] or 0) / 1024:.1f} MB.",
        "",
        "What the harness is and is not: a Lambda Runtime API on loopback (no microVM, warm page "
        "cache), so absolute milliseconds are lower than Lambda's and only the ratios carry over. "
        "A route gets a signed-in customer's request against a stub AWS that has no items (so its "
        "answer is often 404 or 403); a consumer an empty batch, but the fraud scorer a batch of 100 "
        "records from 10 customers, scored, written and answered; a saga step the payload its Task "
        "state gives it for one order, which goes as far as a store with no items lets it (a step "
        "that needs an earlier step's record answers its business error); the payment provider "
        "is never reached (see local/bench/events.py). The stub answers without Nagle's delay, so "
        "a first invoke's AWS calls cost what a connection on loopback costs.",
        "",
        "| function | kind | answer | init median (ms) | init / hello | first invoke median (ms) | peak RSS (MB) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for f, s in cs.items():
        first = s["first_invoke_ms"]["median"]
        lines.append(
            f"| {f} | {s['kind']} | {s['answer'] or '-'} | "
            f"{s['init_ms']['median'] or 0:.1f} | "
            f"{s['init_ratio_median_of_pairs'] or 0:.2f} | {first if first is not None else 0:.1f} | "
            f"{(mem.get(f) or 0) / 1024:.1f} |")
    bench = results.get("criterion") or {}
    if bench:
        lines += ["", "**Warm handler cost** (criterion, `cargo bench -p bootstrap`, the release profile's "
                  "opt-level without LTO; the work "
                  "one request does inside the function without the network: the event decoded, the "
                  "body parsed and validated, items (de)serialized from in-memory stores, the answer "
                  "built; functions/bootstrap/benches/):", "",
                  "| benchmark | median (µs) | 95% CI (µs) | mean (µs) |", "|---|---:|---|---:|"]
        for name, e in bench.items():
            lo, hi = e["median"]["ci95"]
            lines.append(f"| {name} | {e['median']['ns'] / 1000:.2f} | {lo / 1000:.2f}-{hi / 1000:.2f} | "
                         f"{e['mean']['ns'] / 1000:.2f} |")
    trips = results.get("round_trips")
    if trips:
        lines += ["", f"**DynamoDB round trips of every operation** (counted by the SDK interceptor in "
                  f"every function during `make test` on {trips['date']}, read back from the functions' "
                  f"metrics lines by local/round_trips.py, which fails the tests when an operation's "
                  f"usual count is not its budget): the usual count of a successful invocation, per "
                  f"record for a consumer.", "", trips["table"].rstrip("\n")]
    fraud = results.get("fraud_batch")
    if fraud:
        by = fraud["requests_by_users"]
        lines += ["", f"**The fraud scorer's batch path** (functions/fraud/tests/batch.rs against the "
                  f"emulator during `make test` on {fraud['date']}): DynamoDB requests for one batch of "
                  f"{fraud['records']} new records from 1, 10 and 100 customers: "
                  f"{by['1']}, {by['10']} and {by['100']}: one `BatchGetItem` of the customers' states, then "
                  "conditional `TransactWriteItems` of up to 100 items, each customer's state with its "
                  "orders' assessments and `FraudAssessed` outbox items in the same one (a redelivered "
                  "batch: 2, and nothing written). Its peak memory is the `fraud-score` row above: a "
                  "batch of 100 records from 10 customers per invocation."]
    soak = results.get("soak")
    if soak:
        lines += ["", f"**The local stack's throughput** (`make soak`, its latest run, "
                  f"docs/benchmarks/soak.json, debug functions under cargo lambda watch): "
                  f"{soak['minutes']:g} minutes at {soak['target_orders_per_second']} orders/s, "
                  f"{soak['requests']:,} requests, {soak['failed_requests']} failed, "
                  f"{soak['orders_settled']:,}/{soak['orders_placed']:,} orders final "
                  f"({soak['orders_accepted_per_second']}/s accepted), settle p50 "
                  f"{soak['settle_p50_s']:.1f} s, p99 {soak['settle_p99_s']:.1f} s."]
    lines += ["", "`local/bench/roots.py` measures what the TLS root store costs init; "
              "docs/decisions.md says how the release profile was chosen."]
    failures = {f: s["failures"] for f, s in cs.items() if s["failures"]}
    if failures:
        lines += ["", "Runs that failed (left out of the figures above):", ""]
        lines += [f"- {f}: {len(v)} run(s), first: `{v[0].splitlines()[0]}`" for f, v in failures.items()]
    return "\n".join(lines) + "\n"


def refresh_round_trips() -> int:
    """The round-trip table is measured by `make test`, not by the bench: after a change to an
    operation's round trips, this puts the new table in the results without measuring the rest
    again (each section says the run it comes from)."""
    if not ROUND_TRIPS.exists():
        sys.exit(f"bench: no round trips measured yet ({ROUND_TRIPS}); `make test` writes them")
    results = json.loads((OUT / "bench.json").read_text())
    results["round_trips"] = json.loads(ROUND_TRIPS.read_text())
    if FRAUD_BATCH.exists():
        results["fraud_batch"] = json.loads(FRAUD_BATCH.read_text())
    (OUT / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "bench.md").write_text(render(results))
    print(f"bench: round trips of {results['round_trips']['date']} in {OUT / 'bench.md'}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = bool(os.environ.get("BENCH_QUICK"))
    parser.add_argument("--quick", action="store_true", default=quick)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--warm", type=int)
    parser.add_argument("--skip-build", action="store_true", help="measure the zips and binaries already built")
    parser.add_argument("--round-trips-only", action="store_true",
                        help="take the round trips of the latest `make test` (.local/round-trips.json) "
                             "into bench.json and bench.md, keeping every other figure of the last run")
    args = parser.parse_args(argv)
    if args.round_trips_only:
        return refresh_round_trips()
    rounds = args.rounds or (3 if args.quick else 15)
    warm = args.warm if args.warm is not None else (20 if args.quick else 100)
    decl = load()
    results = {"environment": environment(), "profile": check_profiles(), "rounds": rounds, "warm": warm}
    if not args.skip_build:
        results["build"] = build_functions()
    elif LAST_COLD_BUILD.exists():
        results["build"] = dict(json.loads(LAST_COLD_BUILD.read_text()), reused=True)
    else:
        sys.exit(f"bench: --skip-build, and no cold build was measured yet ({LAST_COLD_BUILD})")
    hello = build_hello()
    results["sizes"] = sizes(decl)
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    with AwsStub() as stub:
        print(f"bench: cold starts, {rounds} rounds of {len(decl['functions'])} functions", flush=True)
        results["cold_start"] = cold_starts(decl, hello, rounds, stub.url, logs)
        print(f"bench: peak memory over {warm} warm invocations", flush=True)
        results["peak_memory_kb"] = peak_memory(decl, hello, warm, stub.url, logs)
        results["aws_calls"] = dict(stub.calls)
    print("bench: criterion, the handlers' work without the network", flush=True)
    results["criterion"] = criterion(args.quick)
    if ROUND_TRIPS.exists():
        results["round_trips"] = json.loads(ROUND_TRIPS.read_text())
    if FRAUD_BATCH.exists():
        results["fraud_batch"] = json.loads(FRAUD_BATCH.read_text())
    soak = OUT / "soak.json"
    if soak.exists():  # the 60-minute soak is its own command (make soak); its latest summary
        results["soak"] = json.loads(soak.read_text())["summary"]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "bench.md").write_text(render(results))
    print((OUT / "bench.md").read_text())
    shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
