"""docker-compose.yml beyond one machine: a GPU machine's workers (profile
`gpu-worker`), a password on Redis, and MinIO for object storage (profile
`s3`). docs/deployment.md walks an operator through them.

The shell lines the containers run are run here too, with stand-ins for
`celery`, `redis-server` and `redis-cli` that write down their arguments:
what is checked is what the container's shell would pass.
"""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_deployment_files import (
    REMOTE_WORKERS,
    _assert_reserves_an_nvidia_gpu,
    _command_tokens,
    _compose,
    _compose_command,
)

ROOT = Path(__file__).resolve().parent.parent


def _resolved(tmp_path: Path, **variables: str) -> dict:
    """The services as `docker-compose config` resolves them with these variables."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "TAILOR_"))}
    env.update(SECRET_KEY="dummy-secret-key", POSTGRES_PASSWORD="Pg-pw-4sx", **variables)
    done = subprocess.run(
        [*_compose_command(), "--env-file", str(env_file), "-f", "docker-compose.yml",
         "--profile", "gpu-worker", "--profile", "s3", "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


def _run_script(service: dict, tmp_path: Path, *, which: str = "command", **env: str):
    """Run the `sh -c` line of a service's command (or healthcheck) as its
    container would, with stand-ins for the programs it starts; returns the
    finished process and the arguments the stand-in was given (None: not run)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    args_file = tmp_path / "args"
    args_file.unlink(missing_ok=True)
    for program in ("celery", "redis-server", "redis-cli"):
        stand_in = bin_dir / program
        stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {args_file}\necho PONG\n')
        stand_in.chmod(0o755)
    tokens = (
        _command_tokens(service) if which == "command" else list(service["healthcheck"]["test"])
    )
    script = tokens[-1].replace("$$", "$")  # compose's escape, undone as compose does
    done = subprocess.run(
        ["sh", "-c", script], env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    given = args_file.read_text().splitlines() if args_file.exists() else None
    return done, given


# --- a GPU machine's workers -----------------------------------------------------


@pytest.mark.parametrize(("name", "queue"), REMOTE_WORKERS.items(), ids=list(REMOTE_WORKERS))
def test_a_gpu_machines_worker_starts_only_in_its_profile_and_reserves_a_gpu(name, queue):
    service = _compose()["services"][name]
    assert service["profiles"] == ["gpu-worker"]
    _assert_reserves_an_nvidia_gpu(service)
    # No Redis or database of its own to wait for: they are the main machine's.
    assert "depends_on" not in service


def test_a_gpu_machines_workers_reach_the_main_machines_redis_and_database(tmp_path):
    services = _resolved(tmp_path, TAILOR_MAIN_HOST="10.1.2.3", REDIS_PASSWORD="r3dis-pw")
    for name in REMOTE_WORKERS:
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"] == "postgres://tailor:Pg-pw-4sx@10.1.2.3:5432/tailor"
        assert environment["REDIS_URL"] == "redis://:r3dis-pw@10.1.2.3:6379"
    # The main machine's own services keep talking to their neighbours.
    assert services["web"]["environment"]["REDIS_URL"] == "redis://:r3dis-pw@redis:6379"


@pytest.mark.parametrize(("name", "queue"), REMOTE_WORKERS.items(), ids=list(REMOTE_WORKERS))
def test_a_gpu_machines_worker_refuses_to_start_without_the_main_host(name, queue, tmp_path):
    service = _compose()["services"][name]
    done, given = _run_script(service, tmp_path)
    assert done.returncode == 2
    assert "Set TAILOR_MAIN_HOST in .env" in done.stderr
    assert given is None  # celery never started

    done, given = _run_script(service, tmp_path, TAILOR_MAIN_HOST="10.1.2.3")
    assert done.returncode == 0, done.stderr
    assert given[:5] == ["-A", "studio", "worker", "-Q", queue]
    assert given[given.index("-c") + 1] == "1"
    assert given[given.index("-n") + 1] == f"{queue}@%h"


# --- Redis with a password ---------------------------------------------------------


def test_redis_asks_for_a_password_only_when_one_is_set(tmp_path):
    redis = _compose()["services"]["redis"]
    _, given = _run_script(redis, tmp_path)
    assert "--requirepass" not in given
    assert given[given.index("--maxmemory-policy") + 1] == "noeviction"

    _, given = _run_script(redis, tmp_path, REDIS_PASSWORD="two words")
    assert given[given.index("--requirepass") + 1] == "two words"


def test_redis_healthcheck_authenticates_when_a_password_is_set(tmp_path):
    redis = _compose()["services"]["redis"]
    assert redis["healthcheck"]["test"][0] == "CMD-SHELL"
    done, given = _run_script(redis, tmp_path, which="healthcheck")
    assert done.returncode == 0 and given == ["ping"]
    done, given = _run_script(redis, tmp_path, which="healthcheck", REDIS_PASSWORD="two words")
    assert done.returncode == 0
    assert given == ["-a", "two words", "--no-auth-warning", "ping"]


# --- object storage ------------------------------------------------------------------


def test_minio_runs_in_the_s3_profile_with_the_studios_keys_and_creates_its_bucket(tmp_path):
    services = _resolved(
        tmp_path, TAILOR_STORAGE="s3", TAILOR_S3_ACCESS_KEY_ID="studio-key",
        TAILOR_S3_SECRET_ACCESS_KEY="studio-secret", TAILOR_S3_BUCKET="team-files",
    )  # fmt: skip
    raw = _compose()["services"]
    assert raw["minio"]["profiles"] == ["s3"] and raw["minio-bucket"]["profiles"] == ["s3"]
    minio = services["minio"]["environment"]
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (
        "studio-key",
        "studio-secret",
    )
    bucket = raw["minio-bucket"]
    assert bucket["depends_on"]["minio"]["condition"] == "service_healthy"
    script = bucket["entrypoint"][-1]
    assert 'mc mb --ignore-existing "studio/$$TAILOR_S3_BUCKET"' in script
    assert services["minio-bucket"]["environment"]["TAILOR_S3_BUCKET"] == "team-files"
    for name in ("web", "worker-train", "gpu-worker-train"):
        environment = services[name]["environment"]
        assert environment["TAILOR_STORAGE"] == "s3", name
        assert environment["TAILOR_S3_BUCKET"] == "team-files", name
        assert environment["TAILOR_S3_ACCESS_KEY_ID"] == "studio-key", name


def test_files_live_on_one_filesystem_unless_told_otherwise(tmp_path):
    services = _resolved(tmp_path)
    assert services["web"]["environment"]["TAILOR_STORAGE"] == "filesystem"
