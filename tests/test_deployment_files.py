"""Checks on the Docker deployment files: Dockerfile, docker-compose.yml,
.dockerignore.

Plain functions, no database: they read the files and ask docker-compose to
validate the compose file. No Docker daemon is needed.
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# One worker service per queue, as `make run` (studio/launcher.py) starts them.
WORKERS = {
    "worker-default": "default",
    "worker-train": "train",
    "worker-infer": "infer",
    "worker-evaluate": "evaluate",
    "worker-maintenance": "maintenance",
}
APP_SERVICES = {"web", *WORKERS, "beat"}
# A GPU machine's workers (profile gpu-worker) and object storage (profile s3):
# tests/test_deployment_scale_out.py.
REMOTE_WORKERS = {"gpu-worker-train": "train", "gpu-worker-infer": "infer"}
OBJECT_STORE = {"minio", "minio-bucket"}
SERVICES = {*APP_SERVICES, *REMOTE_WORKERS, *OBJECT_STORE, "redis", "postgres"}
VOLUMES = {"tailor-data", "hf-cache", "redis-data", "postgres-data", "minio-data"}
TEST_POSTGRES_PASSWORD = "dummy-postgres-password"


# --- helpers -----------------------------------------------------------------


def _compose_command() -> list[str]:
    """The first working compose CLI: `docker-compose` (v1), else `docker compose` (v2)."""
    candidates = []
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    for command in candidates:
        probe = subprocess.run(
            [*command, "version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return command
    pytest.fail(
        "Neither `docker-compose` nor `docker compose` works on this machine; "
        "install docker-compose (e.g. `apt-get install docker-compose`, which "
        "`make test` does when it is missing) to validate docker-compose.yml.",
        pytrace=False,
    )


def _run_compose_config(
    tmp_path: Path,
    secret_key: str | None,
    postgres_password: str | None = TEST_POSTGRES_PASSWORD,
    *,
    quiet: bool = True,
) -> subprocess.CompletedProcess:
    # An empty env file makes the run ignore any developer's .env, so the
    # result depends only on docker-compose.yml and the variables set here.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    for name, value in (("SECRET_KEY", secret_key), ("POSTGRES_PASSWORD", postgres_password)):
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return subprocess.run(
        [
            *_compose_command(),
            "--env-file",
            str(env_file),
            "-f",
            str(COMPOSE_FILE),
            "config",
            *(["-q"] if quiet else []),
        ],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _compose() -> dict:
    # safe_load resolves the `<<:` merge keys the compose file uses for its
    # shared x-tailor-* blocks, so each service is seen fully expanded.
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _command_tokens(service: dict) -> list[str]:
    command = service.get("command", [])
    if isinstance(command, str):
        return shlex.split(command)
    return [str(token) for token in command]


def _option(tokens: list[str], *names: str) -> str | None:
    """The value given to a command-line option, in `-x v`, `--xx v` or `--xx=v` form."""
    for i, token in enumerate(tokens):
        for name in names:
            if token == name and i + 1 < len(tokens):
                return tokens[i + 1]
            if name.startswith("--") and token.startswith(name + "="):
                return token.split("=", 1)[1]
    return None


def _volume_sources(service: dict) -> set[str]:
    sources = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            sources.add(volume.split(":", 1)[0])
        else:
            sources.add(volume.get("source"))
    return sources


def _dockerfile_instructions() -> list[str]:
    """Dockerfile instructions with comments dropped and continuation lines joined."""
    joined = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    if current:
        joined.append(current)
    return joined


def _pinned_torch_version() -> str:
    for line in (ROOT / "requirements" / "ml.txt").read_text().splitlines():
        match = re.match(r"\s*torch\s*==\s*([^\s;#]+)", line)
        if match:
            return match.group(1)
    raise AssertionError("requirements/ml.txt does not pin torch with ==")


# --- docker-compose CLI --------------------------------------------------------


def test_compose_file_is_valid_for_docker_compose(tmp_path):
    result = _run_compose_config(tmp_path, secret_key="dummy-secret-key-for-tests")
    assert result.returncode == 0, (
        f"`docker-compose config -q` failed (exit {result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )


def test_compose_refuses_to_run_without_a_secret_key(tmp_path):
    result = _run_compose_config(tmp_path, secret_key=None)
    assert result.returncode != 0, "compose accepted a configuration with no SECRET_KEY"
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_compose_refuses_to_run_without_a_postgres_password(tmp_path):
    result = _run_compose_config(tmp_path, secret_key="dummy-secret-key", postgres_password=None)
    assert result.returncode != 0, "compose accepted a configuration with no POSTGRES_PASSWORD"
    assert "set POSTGRES_PASSWORD in .env next to docker-compose.yml" in result.stderr


def test_compose_gives_postgres_and_the_app_the_same_password(tmp_path):
    result = _run_compose_config(
        tmp_path, secret_key="dummy-secret-key", postgres_password="Pg-pw-4sx", quiet=False
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert resolved["postgres"]["environment"]["POSTGRES_PASSWORD"] == "Pg-pw-4sx"
    for name in APP_SERVICES:
        assert (
            resolved[name]["environment"]["DATABASE_URL"]
            == "postgres://tailor:Pg-pw-4sx@postgres:5432/tailor"
        ), name


# --- docker-compose.yml structure ----------------------------------------------


def test_compose_file_has_no_obsolete_version_key():
    assert "version" not in _compose()


def test_compose_file_defines_every_service():
    assert set(_compose()["services"]) == SERVICES


def test_compose_file_declares_the_named_volumes():
    assert set(_compose()["volumes"]) >= VOLUMES


def test_every_service_built_from_the_project_image_mounts_the_tailor_data_volume():
    services = _compose()["services"]
    app_services = {name for name, s in services.items() if "build" in s}
    assert app_services == APP_SERVICES | set(REMOTE_WORKERS)
    images = {services[name].get("image") for name in app_services}
    assert len(images) == 1, f"the app services should share one image, got {images}"
    for name in app_services:
        service = services[name]
        assert "tailor-data" in _volume_sources(service), f"{name} lacks the tailor-data volume"
        assert "hf-cache" in _volume_sources(service), f"{name} lacks the hf-cache volume"
        assert "/app/var" in [
            v.split(":")[1] if isinstance(v, str) else v["target"] for v in service["volumes"]
        ], f"{name} does not mount the data volume at /app/var"


def test_app_services_share_one_environment_with_secret_key_taken_from_the_env():
    services = _compose()["services"]
    environments = [services[name]["environment"] for name in sorted(APP_SERVICES)]
    assert all(env == environments[0] for env in environments)
    environment = environments[0]
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), (
        "SECRET_KEY must come from the environment and be required, never a literal"
    )


@pytest.mark.parametrize(
    "variable", ["DATABASE_URL", "REDIS_URL", "VAR_DIR", "ALLOWED_HOSTS", "HF_HOME"]
)
def test_the_app_services_environment_holds(variable):
    assert variable in _compose()["services"]["web"]["environment"]


def test_the_postgres_password_is_required_with_no_default():
    services = _compose()["services"]
    required = "${POSTGRES_PASSWORD:?"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(required)
    assert f"postgres://tailor:{required}" in services["web"]["environment"]["DATABASE_URL"]
    assert "POSTGRES_PASSWORD:-" not in COMPOSE_FILE.read_text()


@pytest.mark.parametrize(
    ("variable", "default"),
    [
        ("SESSION_COOKIE_SECURE", "0"),
        ("CSRF_COOKIE_SECURE", "0"),
        ("SECURE_SSL_REDIRECT", "0"),
        ("SECURE_HSTS_SECONDS", "0"),
        ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "0"),
        ("SECURE_HSTS_PRELOAD", "0"),
        ("TAILOR_TRUST_X_FORWARDED_PROTO", "0"),
        ("TAILOR_FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
    ],
)
def test_the_tls_switches_reach_the_app_and_are_off_unless_set(variable, default):
    environment = _compose()["services"]["web"]["environment"]
    assert environment[variable] == f"${{{variable}:-{default}}}"


def test_web_trusts_forwarded_headers_only_from_the_configured_proxy():
    web = _compose()["services"]["web"]
    script = " ".join(_command_tokens(web))
    # $$ is compose's escape: the container's shell expands the variable.
    assert '--forwarded-allow-ips "$$TAILOR_FORWARDED_ALLOW_IPS"' in script
    cmd = next(i for i in _dockerfile_instructions() if i.startswith("CMD "))
    assert '--forwarded-allow-ips \\"${TAILOR_FORWARDED_ALLOW_IPS:-127.0.0.1,::1}\\"' in cmd


def _assert_reserves_an_nvidia_gpu(service: dict) -> None:
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", [])
        for device in devices
    ), devices


def test_train_worker_reserves_an_nvidia_gpu():
    _assert_reserves_an_nvidia_gpu(_compose()["services"]["worker-train"])


def test_infer_worker_reserves_an_nvidia_gpu():
    _assert_reserves_an_nvidia_gpu(_compose()["services"]["worker-infer"])


def test_train_worker_takes_one_task_at_a_time_in_a_fresh_process():
    tokens = _command_tokens(_compose()["services"]["worker-train"])
    assert tokens[:4] == ["celery", "-A", "studio", "worker"], tokens
    assert _option(tokens, "-Q", "--queues") == "train"
    assert _option(tokens, "-c", "--concurrency") == "1"
    assert _option(tokens, "--max-tasks-per-child") == "1"
    assert _option(tokens, "--prefetch-multiplier") == "1"


def test_evaluate_worker_reserves_an_nvidia_gpu():
    _assert_reserves_an_nvidia_gpu(_compose()["services"]["worker-evaluate"])


@pytest.mark.parametrize(("name", "queue"), WORKERS.items(), ids=list(WORKERS))
def test_each_worker_consumes_its_own_queue(name, queue):
    tokens = _command_tokens(_compose()["services"][name])
    assert tokens[:4] == ["celery", "-A", "studio", "worker"]
    assert _option(tokens, "-Q", "--queues") == queue
    assert _option(tokens, "-n", "--hostname") == f"{queue}@%h"


def test_compose_runs_a_worker_for_every_queue_the_launcher_runs():
    from studio.launcher import roles

    launched = {_option(role.argv, "-Q") for role in roles("127.0.0.1", 8000)} - {None}
    assert launched == set(WORKERS.values())


@pytest.mark.parametrize("name", ["worker-evaluate", "worker-maintenance"])
def test_one_task_at_a_time_on_the_evaluate_and_maintenance_workers(name):
    assert _option(_command_tokens(_compose()["services"][name]), "-c", "--concurrency") == "1"


def test_the_evaluate_worker_reserves_no_second_task():
    evaluate = _command_tokens(_compose()["services"]["worker-evaluate"])
    assert _option(evaluate, "--prefetch-multiplier") == "1"


def test_beat_runs_the_celery_scheduler_with_its_schedule_on_the_data_volume():
    tokens = _command_tokens(_compose()["services"]["beat"])
    assert tokens[:4] == ["celery", "-A", "studio", "beat"], tokens
    assert (_option(tokens, "-s", "--schedule") or "").startswith("/app/var/")


def test_web_migrates_then_serves_the_asgi_app_on_port_8000():
    web = _compose()["services"]["web"]
    script = " ".join(_command_tokens(web))
    assert script.index("migrate --noinput") < script.index("uvicorn studio.asgi:application")
    assert "make_demo_models" in script
    assert "--port 8000" in script
    assert any(str(port).endswith(":8000") for port in web["ports"])


def test_web_healthcheck_calls_healthz():
    test = _compose()["services"]["web"]["healthcheck"]["test"]
    assert "/healthz" in " ".join(test if isinstance(test, list) else [test])


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_services_wait_for_healthy_redis_and_postgres(name):
    depends_on = _compose()["services"][name]["depends_on"]
    assert {backing: depends_on[backing]["condition"] for backing in ("redis", "postgres")} == {
        "redis": "service_healthy",
        "postgres": "service_healthy",
    }


@pytest.mark.parametrize("backing", ["redis", "postgres"])
def test_redis_and_postgres_report_their_health(backing):
    assert "test" in _compose()["services"][backing]["healthcheck"]


def test_redis_never_evicts_broker_keys_and_persists_them():
    redis = _compose()["services"]["redis"]
    tokens = shlex.split(_command_tokens(redis)[-1])  # sh -c "exec redis-server ..."
    assert _option(tokens, "--maxmemory-policy") == "noeviction"
    assert _option(tokens, "--appendonly") == "yes"
    assert "redis-data" in _volume_sources(redis)


def test_every_service_restarts_by_itself():
    for name, service in _compose()["services"].items():
        if name == "minio-bucket":  # creates the bucket once, then exits
            assert service["restart"] == "no"
            continue
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


# --- Dockerfile -----------------------------------------------------------------


def test_dockerfile_installs_both_requirements_files():
    pip_installs = [i for i in _dockerfile_instructions() if re.search(r"\bpip install\b", i)]
    assert any(
        "-r requirements/web.txt" in i and "-r requirements/ml.txt" in i for i in pip_installs
    ), pip_installs


def test_dockerfile_pins_no_torch_version_other_than_requirements():
    wanted = _pinned_torch_version()
    text = "\n".join(_dockerfile_instructions())
    for match in re.finditer(r"\btorch\s*(==|>=|<=|~=|!=|<|>)\s*([\w.+!-]+)", text):
        assert match.groups() == ("==", wanted), (
            f"Dockerfile names {match.group(0)!r}; requirements/ml.txt pins torch=={wanted}"
        )


def test_dockerfile_runs_as_a_non_root_user_from_app():
    instructions = _dockerfile_instructions()
    assert instructions[0].startswith("FROM python:3.11-slim")
    users = [i.split(None, 1)[1] for i in instructions if i.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert "WORKDIR /app" in instructions


def test_dockerfile_collects_static_files_at_build_time():
    assert any("collectstatic --noinput" in i for i in _dockerfile_instructions())


# --- .dockerignore ---------------------------------------------------------------


@pytest.mark.parametrize(
    "needed", [".venv", "var", ".git", "**/__pycache__", "node_modules", ".env"]
)
def test_dockerignore_keeps_local_state_out_of_the_build_context(needed):
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert needed in patterns, f".dockerignore should exclude {needed}"
