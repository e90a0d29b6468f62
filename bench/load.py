"""Benchmark: the studio's API and websockets under a team's load.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 30] [--sizes 1000 100000]
                                   [--think 0.5] [--database postgresql|sqlite]

For each size, a fresh database (PostgreSQL when one answers at
TEST_POSTGRES_URL, else SQLite) holds that many jobs spread over the clients'
users, and the web server as `make run` starts it (uvicorn, TAILOR_WEB_WORKERS
processes, or --web-workers) serves it with its own embedded Redis. Then, for
`--seconds`:

- `--clients` API clients, each its own user with its own token, run a
  script's loop: list their jobs (`GET /api/v1/jobs/`, the first page of
  20), fetch
  one (`GET /api/v1/jobs/<id>/`), list their datasets, and now and then
  create a job (`POST /api/v1/jobs/`, a real one, queued to the broker);
  between requests each waits an exponentially distributed think time
  (mean `--think` s), as scripts polling a studio do. The load is open: the
  offered rate is clients / think (100 requests/s by default) whatever the
  answers' speed, so latency is measured, not hidden by back-pressure.
- as many job pages' websockets (`/ws/jobs/<id>/`, session-authenticated)
  stay open throughout; their connect time and any drop count.

The sockets open first; the clients then run `--warmup` seconds unmeasured
(each web process's first requests set up what later ones reuse) before the
measured `--seconds`.

Printed: per size and endpoint, requests, p50 and p99 latency, errors, and the
list p99's ratio between the largest and the smallest size. Targets: p99 <=
100 ms for list and retrieve, no errors, and list latency flat with the
database's size (p99 ratio <= 1.5). Exits 1 when a target is missed.

The client and the server share this machine's cores; on 2 cores the client's
own work is a fair part of each figure. Seeding 100k jobs takes about a
minute (bulk inserts of copies of one real job).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGET_P99_MS = 100.0
TARGET_FLAT_RATIO = 1.5
# Jobs per list page: OpenAI's default, and fewer than a client's jobs at
# every size (20 at 1k), so that each size lists as many jobs and only the
# database's size differs.
PAGE = 20
ENDPOINTS = ("list jobs", "retrieve job", "list datasets", "create job")
WEIGHTS = (0.4, 0.4, 0.15, 0.05)

SEED_SCRIPT = r"""
import json, sys, uuid, datetime
import django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from datasets_app.services import create_from_sample, run_validation
from jobs.models import FineTuneJob
from jobs.services.lifecycle import check_start_job, create_job
from studio.services.tokens import create_token

clients, jobs_total = int(sys.argv[1]), int(sys.argv[2])
call_command("make_demo_models", verbosity=0)
User = get_user_model()
seeded = []
templates = []
for number in range(clients):
    user = User.objects.create_user(f"load{number}", password="load-bench-password-1")
    dataset = create_from_sample(user, "support-routing")
    run_validation(str(dataset.pk), dataset.revision)
    document = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": "tailor-tiny"}}
    job = create_job(user, check_start_job(user, document), start=False)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    seeded.append({
        "token": create_token(user, "load").secret, "dataset": str(dataset.pk),
        "session": session.session_key, "jobs": [str(job.pk)],
    })
    templates.append(job)

fields = [
    f.name for f in FineTuneJob._meta.concrete_fields if f.name not in ("id", "fine_tuned_model")
]
made = clients
start = timezone.now() - datetime.timedelta(days=365)
batch = []
while made < jobs_total:
    owner = made % clients
    template = templates[owner]
    copy = FineTuneJob(**{name: getattr(template, name) for name in fields})
    copy.id = uuid.uuid4()
    copy.fine_tuned_model = f"{template.fine_tuned_model}-{made}"
    copy.status = ("succeeded", "failed", "cancelled", "created")[made % 4]
    copy.created_at = start + datetime.timedelta(seconds=made * 300)
    batch.append(copy)
    if len(seeded[owner]["jobs"]) < 20:
        seeded[owner]["jobs"].append(str(copy.id))
    made += 1
    if len(batch) == 5000:
        with transaction.atomic():
            FineTuneJob.objects.bulk_create(batch)
        batch = []
if batch:
    with transaction.atomic():
        FineTuneJob.objects.bulk_create(batch)
from django.db import connection
if connection.vendor == "postgresql":
    # What autovacuum does within a minute of a bulk load: the planner's
    # statistics and the visibility map that index-only counts need.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
print(json.dumps({"clients": seeded, "jobs": FineTuneJob.objects.count()}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/tailor")
    try:
        import psycopg

        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    except Exception:
        return None
    return url


def fresh_database(kind: str, scratch: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{scratch / 'load.sqlite3'}"
    import psycopg

    base = postgres_url()
    if base is None:
        sys.exit("No PostgreSQL answers at TEST_POSTGRES_URL; use --database sqlite.")
    server = base.rsplit("/", 1)[0]
    with psycopg.connect(server + "/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS tailor_load WITH (FORCE)")
        admin.execute("CREATE DATABASE tailor_load")
    return server + "/tailor_load"


def studio_env(scratch: Path, database: str, redis_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="studio.settings",
        PYTHONPATH=str(ROOT),
        DATABASE_URL=database,
        VAR_DIR=str(scratch / "var"),
        MEDIA_ROOT=str(scratch / "media"),
        REDIS_URL=redis_url,
        DEBUG="false",
        SECRET_KEY="load-bench-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    env.setdefault("MODELS_ROOT", str(ROOT / "var" / "models"))
    return env


def run(env: dict, *args: str) -> str:
    done = subprocess.run(
        [PYTHON, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def wait_until_serving(port: int, server: subprocess.Popen) -> None:
    import httpx2 as httpx  # the async client openai and huggingface_hub bring

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("The server exited before answering.")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    sys.exit("The server did not answer within 60 s.")


@dataclass
class Run:
    base: str
    stop_at: float
    think: float
    measure_from: float = 0.0  # requests that start earlier are the warm-up, not counted
    samples: dict = field(default_factory=lambda: {name: [] for name in ENDPOINTS})
    errors: dict = field(default_factory=lambda: {name: [] for name in ENDPOINTS})
    opened: list = field(default_factory=list)
    dropped: list = field(default_factory=list)


async def client_loop(seeded: dict, run: Run, rng: random.Random) -> None:
    import httpx2 as httpx  # the async client openai and huggingface_hub bring

    headers = {"Authorization": f"Bearer {seeded['token']}"}
    body = {"data": {"dataset": seeded["dataset"]}, "model": {"base_model": "tailor-tiny"}}
    think = run.think
    # An idle connection is dropped before uvicorn's keep-alive timeout (5 s)
    # closes it: a request sent as the server closes it fails, as in any client.
    limits = httpx.Limits(keepalive_expiry=4)
    async with httpx.AsyncClient(
        base_url=run.base, headers=headers, timeout=30, limits=limits
    ) as http:
        await asyncio.sleep(rng.uniform(0, think))  # clients do not start in step
        while time.monotonic() < run.stop_at:
            endpoint = rng.choices(ENDPOINTS, WEIGHTS)[0]
            began = time.perf_counter()
            try:
                if endpoint == "list jobs":
                    answer = await http.get("/api/v1/jobs/", params={"per_page": PAGE})
                elif endpoint == "retrieve job":
                    answer = await http.get(f"/api/v1/jobs/{rng.choice(seeded['jobs'])}/")
                elif endpoint == "list datasets":
                    answer = await http.get("/api/v1/datasets/")
                else:
                    answer = await http.post("/api/v1/jobs/", json=body)
                ok = answer.status_code < 400
                detail = f"{answer.status_code} {answer.text[:120]}"
            except httpx.HTTPError as exc:
                ok, detail = False, repr(exc)
            elapsed = (time.perf_counter() - began) * 1000
            if began >= run.measure_from or not ok:  # an error counts, warm or not
                run.samples[endpoint].append(elapsed)
            if not ok:
                run.errors[endpoint].append(detail)
            await asyncio.sleep(rng.expovariate(1 / think))


async def socket_holder(seeded: dict, port: int, run: Run, opened: asyncio.Event) -> None:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/jobs/{seeded['jobs'][0]}/"
    headers = {"Cookie": f"sessionid={seeded['session']}", "Origin": f"http://127.0.0.1:{port}"}
    began = time.perf_counter()
    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=30) as ws:
            run.opened.append((time.perf_counter() - began) * 1000)
            opened.set()
            while (left := run.stop_at - time.monotonic()) > 0:
                # The end is not known until every socket is open: look again each second.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.recv(), timeout=min(left, 1.0))
    except Exception as exc:  # counted and shown, whatever ended the socket
        run.dropped.append(repr(exc)[:160])
        opened.set()


async def drive(
    clients: list[dict], port: int, seconds: float, think: float, warmup: float
) -> dict:
    """The sockets open first (their connect time is measured on its own);
    then the clients run `warmup` seconds unmeasured (each web process's
    first requests set up what later ones reuse), then `seconds` measured."""
    run = Run(base=f"http://127.0.0.1:{port}", stop_at=float("inf"), think=think)
    rngs = [random.Random(number) for number in range(len(clients))]  # noqa: S311 (timing, not secrets)
    events = [asyncio.Event() for _ in clients]
    sockets = [
        asyncio.create_task(socket_holder(seeded, port, run, event))
        for seeded, event in zip(clients, events, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), timeout=60)
    run.measure_from = time.perf_counter() + warmup
    run.stop_at = time.monotonic() + warmup + seconds
    await asyncio.gather(
        *(client_loop(seeded, run, rng) for seeded, rng in zip(clients, rngs, strict=True)),
        *sockets,
    )
    return {"samples": run.samples, "errors": run.errors, "opened": run.opened,
            "dropped": run.dropped}  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(size: int, args, kind: str) -> dict:
    from studio.redis_server import EmbeddedRedis

    scratch = Path(tempfile.mkdtemp(prefix="tailor-load-"))
    redis = EmbeddedRedis(scratch / "redis", free_port(), durable=False)
    server = None
    try:
        env = studio_env(scratch, fresh_database(kind, scratch), redis.start())
        print(f"\n== {size:,} jobs ({kind}) ==", flush=True)
        began = time.monotonic()
        run(env, "manage.py", "migrate", "--verbosity", "0")
        seeded = json.loads(
            run(env, "-c", SEED_SCRIPT, str(args.clients), str(size)).strip().splitlines()[-1]
        )
        print(f"seeded {seeded['jobs']:,} jobs in {time.monotonic() - began:.0f} s", flush=True)
        port = free_port()
        # The web server exactly as `make run` starts it (studio/launcher.py).
        from studio.launcher import roles

        env["TAILOR_WEB_WORKERS"] = str(args.web_workers)
        web = next(role for role in roles("127.0.0.1", port) if role.name == "web")
        server = subprocess.Popen(
            [*web.argv, "--log-level", "warning"], env={**env, **web.env}, cwd=ROOT
        )
        wait_until_serving(port, server)
        result = asyncio.run(drive(seeded["clients"], port, args.seconds, args.think, args.warmup))
        result["size"] = size
        return result
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        redis.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def report(results: list[dict], seconds: float) -> bool:
    met = True
    print(f"\n{'jobs':>9} {'endpoint':<14} {'requests':>8} {'req/s':>6} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")  # fmt: skip
    for result in results:
        for endpoint in ENDPOINTS:
            times = result["samples"][endpoint]
            p99 = percentile(times, 0.99)
            errors = len(result["errors"][endpoint])
            rate = len(times) / seconds
            print(f"{result['size']:>9,} {endpoint:<14} {len(times):>8,} {rate:>6.1f} "
                  f"{percentile(times, 0.5):>7.1f} {p99:>7.1f} {errors:>6}")  # fmt: skip
            if errors:
                met = False
                print(f"{'':>9} first error: {result['errors'][endpoint][0]}")
            if endpoint in ("list jobs", "retrieve job", "list datasets") and p99 > TARGET_P99_MS:
                met = False
        opened = result["opened"]
        print(f"{result['size']:>9,} {'websockets':<14} {len(opened):>8} open, connect p50 "
              f"{percentile(opened, 0.5):.1f} ms, p99 {percentile(opened, 0.99):.1f} ms, "
              f"{len(result['dropped'])} dropped")  # fmt: skip
        if result["dropped"]:
            met = False
            print(f"{'':>9} first drop: {result['dropped'][0]}")
    if len(results) > 1:
        small, large = results[0], results[-1]
        ratio = percentile(large["samples"]["list jobs"], 0.99) / percentile(
            small["samples"]["list jobs"], 0.99
        )
        p50_ratio = statistics.median(large["samples"]["list jobs"]) / statistics.median(
            small["samples"]["list jobs"]
        )
        print(f"\nlist jobs, {large['size']:,} vs {small['size']:,} jobs: p99 ratio {ratio:.2f}, "
              f"p50 ratio {p50_ratio:.2f} (target p99 ratio <= {TARGET_FLAT_RATIO})")  # fmt: skip
        met = met and ratio <= TARGET_FLAT_RATIO
    print(f"\ntargets: p99 <= {TARGET_P99_MS:.0f} ms for list and retrieve, no errors, flat "
          f"list latency: {'met' if met else 'MISSED'}")  # fmt: skip
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--think", type=float, default=0.5, help="mean seconds between requests")
    parser.add_argument("--warmup", type=float, default=5, help="seconds run before measuring")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default=None)
    parser.add_argument(
        "--web-workers", type=int, default=None,
        help="web server processes (default: what make run starts, TAILOR_WEB_WORKERS)",
    )  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.web_workers is None:
        from studio.launcher import web_workers

        args.web_workers = web_workers()
    kind = args.database or ("postgresql" if postgres_url() else "sqlite")
    offered = args.clients / args.think
    print(f"{args.clients} clients, think {args.think} s (offered {offered:.0f} requests/s), "
          f"{args.clients} websockets, {args.seconds:.0f} s per size, {kind}, "
          f"{args.web_workers} web process(es)")  # fmt: skip
    results = [measure(size, args, kind) for size in sorted(args.sizes)]
    sys.exit(0 if report(results, args.seconds) else 1)


if __name__ == "__main__":
    main()
