"""`make bench-app`: throughput and latency of the serving app's `POST /api/execute`.

Starts a real PostgreSQL with pgvector (pgserver), the workspace stand-in (wheel/tests/serving_standin.py) in
its own process with the LLM answering after a fixed 20 ms and the embeddings at once, and the app itself
under uvicorn (`python -m agent_jobs.serving`, as on Databricks Apps, identity headers required), all on
127.0.0.1. Then, for 1, 10 and 50 concurrent clients, sends a bounded number of fraud_detector requests and
prints requests per second, p50 and p99 latency, and the app's own share: latency minus the LLM stand-in's
20 ms (one embeddings call, one retrieval, one LLM call and one insert per request). A benchmark, not a test:
it asserts nothing but that every request succeeded, and it stops by itself.

Then the telemetry's cost on the request path: the same requests at 50 clients against fresh app processes
configured as on Databricks Apps (databricks-sdk credentials, the service principal's client credentials), with
TELEMETRY_* off, on at the seed's sample rate 0.1, and on for every trace, the stand-in playing Zerobus Ingest
(OAuth token, OTLP/HTTP receiver decoding each export); the differences are the telemetry's cost.

    python wheel/bench/bench_app.py [--requests-per-client N] [--concurrency 1 10 50] [--telemetry-clients 50]
        [--telemetry-rounds 3]
    python wheel/bench/bench_app.py --serve [--port 8000]   # the app in local mode against the stand-ins, until ^C
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "wheel" / "tests"
sys.path.insert(0, str(TESTS))

from serving_pg import cluster  # noqa: E402
from serving_standin import CHAT, EMBEDDINGS, TOKEN  # noqa: E402

LLM_DELAY_S = 0.020
DIM = 64
HEADERS = {"X-Forwarded-User": "bench", "X-Forwarded-Email": "bench@example.com"}
MAX_SECONDS_PER_LEVEL = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({process.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url}: not ready after {timeout} s")


@contextmanager
def processes(
    local: bool, app_port: int, log_dir: Path, app_env: dict[str, str] | None = None
) -> Iterator[tuple[str, str, str]]:
    """Postgres, the stand-in and the app; yields (app URL, stand-in URL, the database's DSN). `app_env` is
    added to the app's environment ({standin} in a value is replaced by the stand-in's URL)."""
    db = cluster().new_database("bench_app")
    standin_port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    try:
        standin = subprocess.Popen(
            [sys.executable, str(TESTS / "serving_standin.py"), "--port", str(standin_port), "--dim", str(DIM),
             "--llm-delay-s", str(LLM_DELAY_S)],
            stdout=(log_dir / "standin.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(standin)
        standin_url = f"http://127.0.0.1:{standin_port}"
        wait_ready(f"{standin_url}/.well-known/databricks-config", standin)
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "PYTHONPATH") if k in os.environ}
        env.update({
            "SERVING_BIND_HOST": "127.0.0.1", "DATABRICKS_APP_PORT": str(app_port),
            "SERVING_ENDPOINTS_URL": f"{standin_url}/serving-endpoints", "SERVING_LLM_ENDPOINT": CHAT,
            "SERVING_EMBEDDINGS_ENDPOINT": EMBEDDINGS, "SERVING_EMBEDDING_DIM": str(DIM), "SERVING_PG_DSN": db.dsn,
            "SERVING_POOL_MAX_SIZE": "20",
        })  # fmt: skip
        if local:
            env["SERVING_LOCAL"] = "true"
        env.update({k: v.replace("{standin}", standin_url) for k, v in (app_env or {}).items()})
        app = subprocess.Popen([sys.executable, "-m", "agent_jobs.serving"], env=env,
                               stdout=(log_dir / "app.log").open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        started.append(app)
        app_url = f"http://127.0.0.1:{app_port}"
        wait_ready(f"{app_url}/health", app)
        yield app_url, standin_url, db.dsn
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def level(url: str, concurrency: int, per_client: int) -> dict[str, float]:
    """`concurrency` clients each sending `per_client` requests back to back (bounded in count and time)."""
    latencies: list[float] = []
    app_ms: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.monotonic() + MAX_SECONDS_PER_LEVEL
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=HEADERS) as client:

        async def worker(n: int) -> None:
            nonlocal failures
            for i in range(per_client):
                if time.monotonic() > deadline:
                    return
                body = {"agent_name": "fraud_detector",
                        "data": {"transaction_id": f"c{concurrency}-{n}-{i}", "amount": 100 + (i * 37) % 9000,
                                 "merchant": ("Electronics Store", "Grocery", "Fuel")[i % 3]}}  # fmt: skip
                started = time.perf_counter()
                response = await client.post("/api/execute", json=body)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    failures += 1
                    continue
                latencies.append(elapsed * 1000)
                app_ms.append(response.json()["duration_ms"])

        await asyncio.gather(*(worker(n) for n in range(min(concurrency, 2))))  # warm-up
        latencies.clear()
        app_ms.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        wall = time.perf_counter() - started
    if failures or not latencies:
        raise SystemExit(f"{failures} requests failed at concurrency {concurrency}; see the app's log")
    return {"requests": len(latencies), "rps": len(latencies) / wall, "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99), "agent_p50": statistics.median(app_ms)}  # fmt: skip


async def standin_latency(standin_url: str, n: int = 50) -> float:
    """p50 of the LLM stand-in alone, seen from this machine (its 20 ms plus its own HTTP cost)."""
    body = {"messages": [{"role": "user", "content": "{}"}], "max_tokens": 16}
    samples = []
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(n):
            started = time.perf_counter()
            await client.post(f"{standin_url}/serving-endpoints/{CHAT}/invocations", json=body)
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def breakdown(standin_url: str, db_dsn: str, n: int = 200) -> dict[str, tuple[float, float]]:
    """The app in this process with an in-memory span exporter: p50 and p99 of each span over `n` sequential
    requests, which splits a request's time between the app's own code and its calls."""
    import logging

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agent_jobs.serving import telemetry
    from agent_jobs.serving.app import create_app
    from agent_jobs.serving.settings import load_settings

    logging.basicConfig(level=logging.WARNING)  # before mcp's own basicConfig (INFO) and the per-request lines
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_provider(provider)
    settings = load_settings({"SERVING_ENDPOINTS_URL": f"{standin_url}/serving-endpoints", "SERVING_LLM_ENDPOINT": CHAT,
                              "SERVING_EMBEDDINGS_ENDPOINT": EMBEDDINGS, "SERVING_EMBEDDING_DIM": str(DIM),
                              "SERVING_PG_DSN": db_dsn, "SERVING_MEMORY_SCHEMA": "breakdown"})  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app", headers=HEADERS) as client:
            for i in range(n + 20):
                if i == 20:
                    exporter.clear()  # warm-up done
                data = {"transaction_id": f"b{i}", "amount": 100 + i, "merchant": "Shop"}
                body = {"agent_name": "fraud_detector", "data": data}
                if (await client.post("/api/execute", json=body)).status_code != 200:
                    raise SystemExit("a breakdown request failed")
    telemetry.use_provider(None)
    durations: dict[str, list[float]] = {}
    for span in exporter.get_finished_spans():
        durations.setdefault(span.name, []).append((span.end_time - span.start_time) / 1e6)  # type: ignore[operator]
    return {name: (percentile(v, 0.5), percentile(v, 0.99)) for name, v in durations.items()}


def bench(concurrency: Sequence[int], per_client: int) -> None:
    """per_client 0: 200 requests at 1 client, 20 per client at 10 and more."""
    log_dir = Path(tempfile.mkdtemp(prefix="bench-app-"))
    with processes(False, free_port(), log_dir) as (url, standin_url, dsn):
        llm_ms = asyncio.run(standin_latency(standin_url))
        rows = [(c, asyncio.run(level(url, c, per_client or max(20, 200 // c)))) for c in concurrency]
        spans = asyncio.run(breakdown(standin_url, dsn))
    print(f"\nPOST /api/execute (fraud_detector), app under uvicorn, LLM stand-in fixed {LLM_DELAY_S * 1000:.0f} ms "
          f"(measured alone: p50 {llm_ms:.1f} ms),")  # fmt: skip
    print(f"real Postgres 16 + pgvector; app, stand-in, Postgres and clients share {os.cpu_count()} cores")
    print(
        f"{'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'app p50 ms':>11} {'app p99 ms':>11}"
    )
    for c, r in rows:
        print(f"{c:>7} {r['requests']:>8.0f} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
              f"{r['p50'] - LLM_DELAY_S * 1000:>11.1f} {r['p99'] - LLM_DELAY_S * 1000:>11.1f}")  # fmt: skip
    print(
        "app = latency minus the stand-in's 20 ms: the app's own work (routing, validation, one embeddings call, "
        "a pgvector retrieval, an insert, JSON) plus the local HTTP hops; logs in",
        log_dir,
    )
    print("\nOne request, sequential, the app in-process (span durations):")
    print(f"{'span':<24} {'p50 ms':>8} {'p99 ms':>8}")
    for name in (
        "HTTP POST /api/execute",
        "agent.execute",
        "llm.chat",
        "embeddings.embed",
        "memory.retrieve",
        "memory.store",
    ):
        p50, p99 = spans.get(name, (float("nan"), float("nan")))
        print(f"{name:<24} {p50:>8.2f} {p99:>8.2f}")
    calls = ("llm.chat", "embeddings.embed", "memory.retrieve", "memory.store")
    own = spans["HTTP POST /api/execute"][0] - sum(spans[n][0] for n in calls)
    print(f"{'app code (the rest)':<24} {own:>8.2f}")


# The app as on Databricks Apps for the telemetry comparison, on and off alike: databricks-sdk authenticated
# against the stand-in (which then also answers the Zerobus token request and the OTLP exports), the app's
# service principal's client credentials beside it. Only TELEMETRY_* differs between the runs.
WORKSPACE_ENV = {
    "DATABRICKS_HOST": "{standin}", "DATABRICKS_TOKEN": TOKEN, "DATABRICKS_AUTH_TYPE": "pat",
    "DATABRICKS_CLIENT_ID": "bench-app-sp", "DATABRICKS_CLIENT_SECRET": "bench-app-sp-secret",
    "DATABRICKS_APP_NAME": "bench-app",
}  # fmt: skip
TELEMETRY_ENV = {
    "TELEMETRY_ENABLED": "true", "TELEMETRY_ENDPOINT": "{standin}", "TELEMETRY_WORKSPACE_ID": "1234567890123456",
    "TELEMETRY_SPANS_TABLE": "main.agents.agent_otel_spans",
    "TELEMETRY_METRICS_TABLE": "main.agents.agent_otel_metrics",
    "TELEMETRY_BATCH_INTERVAL_S": "10", "TELEMETRY_BATCH_SIZE": "1000",
}  # fmt: skip
TELEMETRY_RUNS = (("off", None), ("on, sample 0.1", "0.1"), ("on, sample 1", "1"))


Row = tuple[str, dict[str, float], dict[str, int]]


def telemetry_cost(concurrency: int, per_client: int, rounds: int) -> list[Row]:
    """Latency at `concurrency` clients with telemetry off, on at the seed's sample rate 0.1, and on for every
    trace; each variant in `rounds` fresh app processes, alternating, the median of each figure kept (and what
    the stand-in's Zerobus received, summed)."""
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in TELEMETRY_RUNS}
    received: dict[str, dict[str, int]] = {label: {} for label, _ in TELEMETRY_RUNS}
    for _ in range(rounds):
        for label, rate in TELEMETRY_RUNS:
            env = dict(WORKSPACE_ENV)
            if rate is not None:
                env |= TELEMETRY_ENV | {"TELEMETRY_SAMPLE_RATE": rate}
            log_dir = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
            with processes(False, free_port(), log_dir, env) as (url, standin_url, _):
                results[label].append(asyncio.run(level(url, concurrency, per_client)))
                time.sleep(0.5)  # the metrics' and spans' exports in flight
                counts = httpx.get(f"{standin_url}/standin/otlp", timeout=5).json()
            for key, value in counts.items():
                received[label][key] = received[label].get(key, 0) + int(value)
            shutil.rmtree(log_dir, ignore_errors=True)
    return [
        (label, {k: statistics.median(r[k] for r in results[label]) for k in results[label][0]}, received[label])
        for label, _ in TELEMETRY_RUNS
    ]


def print_telemetry(concurrency: int, rows: list[Row], rounds: int) -> None:
    print(f"\nTelemetry's cost on the request path, {concurrency} clients (median of {rounds} app processes each; "
          "OTLP/HTTP to the stand-in's Zerobus, batches of 10 s / 1000 spans):")  # fmt: skip
    print(f"{'telemetry':<16} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'spans received':>15}")
    base = rows[0][1]
    for label, r, got in rows:
        print(f"{label:<16} {r['requests']:>8.0f} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
              f"{got.get('spans', 0):>15}")  # fmt: skip
    for label, r, _ in rows[1:]:
        print(f"{label}: p50 {r['p50'] - base['p50']:+.1f} ms, p99 {r['p99'] - base['p99']:+.1f} ms, "
              f"throughput {100 * (r['rps'] / base['rps'] - 1):+.1f} % against off")  # fmt: skip


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(port: int) -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like ^C: the app, the stand-in and Postgres end too
    log_dir = Path(tempfile.mkdtemp(prefix="serve-app-"))
    with processes(True, port, log_dir) as (url, _, _):
        print(f"the app (local mode) is at {url}, against the stand-ins; logs in {log_dir}. ^C stops it.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    shutil.rmtree(log_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--requests-per-client", type=int, default=0,
                        help="requests each client sends (default: 200 at 1 client, 20 each beyond)")  # fmt: skip
    parser.add_argument("--telemetry-clients", type=int, default=50,
                        help="clients of the telemetry on/off comparison (0: skip it)")  # fmt: skip
    parser.add_argument("--telemetry-rounds", type=int, default=3, help="app processes per telemetry variant")
    parser.add_argument("--serve", action="store_true", help="run the app against the stand-ins until ^C")
    parser.add_argument("--port", type=int, default=8000, help="the app's port with --serve")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return
    bench(args.concurrency, args.requests_per_client)
    if args.telemetry_clients:
        c = args.telemetry_clients
        rows = telemetry_cost(c, args.requests_per_client or max(20, 200 // c), args.telemetry_rounds)
        print_telemetry(c, rows, args.telemetry_rounds)


if __name__ == "__main__":
    main()
