"""Deployment settings: the README's production block passes Django's deploy
check with nothing found; the defaults still serve plain http; behind a TLS
proxy the studio believes the proxy's X-Forwarded-Proto and nobody else's;
every page carries a Content-Security-Policy that our templates can live with.

The deploy check runs `manage.py` in a child process with a clean
environment, so the settings are read exactly as a server would read them.
"""

import http.client
import os
import re
import secrets
import subprocess
import sys
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client, override_settings

from studio.launcher import roles
from studio.redis_server import free_port
from tests.processes import PASSWORD, ChildProcess, child_env, wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY_PLACEHOLDER = "replace-with-50-random-characters"
TLS_SWITCHES = (
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
)


def documented_production_settings() -> dict[str, str]:
    """The `NAME=value` lines of README.md's "Behind TLS / production" block."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Behind TLS / production", 1)[1]
    block = re.search(r"```ini\n(.*?)```", section, re.DOTALL).group(1)
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def deploy_check(settings: dict[str, str], var_dir: Path) -> subprocess.CompletedProcess:
    """`manage.py check --deploy --fail-level WARNING` with only these settings."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        **settings,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def with_a_real_secret_key(settings: dict[str, str]) -> dict[str, str]:
    assert settings["SECRET_KEY"] == SECRET_KEY_PLACEHOLDER
    return {**settings, "SECRET_KEY": secrets.token_urlsafe(50)}


# --- the deploy check -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", *TLS_SWITCHES]
)
def test_the_readmes_production_block_sets_every_tls_switch_and_the_deployment_basics(name):
    assert name in documented_production_settings()


def test_the_readmes_production_block_turns_debug_off():
    assert documented_production_settings()["DEBUG"] == "0"


@pytest.mark.parametrize(
    "name", [*TLS_SWITCHES, "TAILOR_FORWARDED_ALLOW_IPS", "TAILOR_TRUST_X_FORWARDED_PROTO"]
)
def test_the_readmes_configuration_table_documents_every_tls_setting(name):
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    assert f"`{name}`" in table


def test_the_documented_production_settings_pass_the_deploy_check_with_no_finding(tmp_path):
    done = deploy_check(with_a_real_secret_key(documented_production_settings()), tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNINGS" not in done.stderr + done.stdout


def test_without_the_tls_switches_the_deploy_check_names_each_one(tmp_path):
    settings = with_a_real_secret_key(documented_production_settings())
    for name in TLS_SWITCHES:
        del settings[name]
    done = deploy_check(settings, tmp_path)
    assert done.returncode == 1
    found = set(re.findall(r"\(security\.(W\d+)\)", done.stderr))
    # HSTS seconds, SSL redirect, session cookie, CSRF cookie.
    assert found == {"W004", "W008", "W012", "W016"}, done.stderr


# --- the defaults: plain http on localhost -----------------------------------------------


def cookies_of(response: http.client.HTTPResponse) -> dict[str, dict]:
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"]),
                   "value": m.value} for name, m in jar.items()}  # fmt: skip


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_defaults_serve_plain_http_and_a_login_works_over_it(live_server_url, alice):
    host = urlsplit(live_server_url).netloc
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.request("GET", "/login/")
    page = connection.getresponse()
    body = page.read().decode()
    assert page.status == 200  # not a redirect to https
    assert page.getheader("Strict-Transport-Security") is None
    csrf = cookies_of(page)["csrftoken"]
    assert csrf == {"secure": False, "httponly": True, "value": csrf["value"]}

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    form = urlencode({"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token})
    connection.request("POST", "/login/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={csrf['value']}",
        "Origin": live_server_url,
    })  # fmt: skip
    login = connection.getresponse()
    login.read()
    assert (login.status, login.getheader("Location")) == (302, "/")
    session = cookies_of(login)["sessionid"]
    assert session["secure"] is False and session["httponly"] is True

    connection.request("GET", "/", headers={"Cookie": f"sessionid={session['value']}"})
    dashboard = connection.getresponse()
    assert dashboard.status == 200
    assert "Welcome, alice" in dashboard.read().decode()
    connection.close()


# --- behind a TLS proxy ------------------------------------------------------------------


def setting_read_from(env: dict[str, str], name: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print(repr(settings.{name}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "studio.settings", **env},
        check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def test_django_believes_x_forwarded_proto_only_when_switched_on(tmp_path):
    var = {"VAR_DIR": str(tmp_path)}
    assert setting_read_from(var, "SECURE_PROXY_SSL_HEADER") == "None"
    switched_on = {**var, "TAILOR_TRUST_X_FORWARDED_PROTO": "1"}
    assert setting_read_from(switched_on, "SECURE_PROXY_SSL_HEADER") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_the_launcher_trusts_forwarded_headers_from_loopback_unless_told(monkeypatch):
    def trusted() -> str:
        argv = next(role.argv for role in roles("127.0.0.1", 8000) if role.name == "web")
        return argv[argv.index("--forwarded-allow-ips") + 1]

    monkeypatch.delenv("TAILOR_FORWARDED_ALLOW_IPS", raising=False)
    assert trusted() == "127.0.0.1,::1"
    monkeypatch.setenv("TAILOR_FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert trusted() == "10.0.0.0/8"


def test_the_launcher_runs_one_web_process_per_core_unless_told(monkeypatch):
    def workers() -> int:
        argv = next(role.argv for role in roles("127.0.0.1", 8000) if role.name == "web")
        return int(argv[argv.index("--workers") + 1])

    monkeypatch.delenv("TAILOR_WEB_WORKERS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert workers() == 2
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert workers() == 4  # one web process per core, but no more than four
    monkeypatch.setenv("TAILOR_WEB_WORKERS", "1")
    assert workers() == 1


def launched_web_server(name: str) -> tuple[ChildProcess, str]:
    """The web server exactly as `make run` starts it (its command line read
    from this process's environment), with SSL redirect on."""
    port = free_port()
    web = next(role for role in roles("127.0.0.1", port) if role.name == "web")
    server = ChildProcess(name, web.argv, child_env(SECURE_SSL_REDIRECT="1", **web.env))
    host = f"127.0.0.1:{port}"

    def answers():
        try:
            connection = http.client.HTTPConnection(host, timeout=2)
            connection.request("GET", "/healthz")
            return connection.getresponse().status in (200, 503)
        except OSError:
            return False

    wait_for(answers, 60, f"{name} to answer", server)
    return server, host


def get(host: str, path: str, headers: dict | None = None) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, response.getheader("Location")


HTTPS_FROM_THE_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_behind_a_trusted_proxy_https_is_believed_and_plain_http_redirected(monkeypatch):
    monkeypatch.delenv("TAILOR_FORWARDED_ALLOW_IPS", raising=False)  # loopback
    server, host = launched_web_server("uvicorn-trusted-proxy")
    try:
        assert get(host, "/login/", HTTPS_FROM_THE_PROXY) == (200, None)
        assert get(host, "/login/") == (301, f"https://{host}/login/")
        # Health checks come over plain http from inside: never redirected.
        assert get(host, "/healthz")[0] in (200, 503)
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_forwarded_proto_from_an_untrusted_peer_is_ignored(monkeypatch):
    monkeypatch.setenv("TAILOR_FORWARDED_ALLOW_IPS", "192.0.2.1")  # not us
    server, host = launched_web_server("uvicorn-untrusted-peer")
    try:
        assert get(host, "/login/", HTTPS_FROM_THE_PROXY) == (301, f"https://{host}/login/")
    finally:
        server.stop()


@pytest.mark.django_db
def test_the_ssl_redirect_spares_healthz():
    with override_settings(SECURE_SSL_REDIRECT=True):
        client = Client()  # its middleware is loaded now, with the setting on
        login = client.get("/login/")
        health = client.get("/healthz")
    assert (login.status_code, login["Location"]) == (301, "https://testserver/login/")
    assert health.status_code in (200, 503)


# --- Content-Security-Policy ----------------------------------------------------------------


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "signed_in"),
    [
        pytest.param("/login/", False, id="login"),
        pytest.param("/", True, id="dashboard"),
        pytest.param("/api/docs/", True, id="api-docs"),
        pytest.param("/api/docs/?script=", True, id="api-docs-script"),
    ],
)
def test_pages_carry_a_policy_with_scripts_and_styles_from_self_only(
    client, alice, path, signed_in
):
    if signed_in:
        client.force_login(alice)
    response = client.get(path)
    assert response.status_code == 200
    policy = policy_of(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]


INLINE = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "a <style> block": re.compile(r"<style\b", re.IGNORECASE),
    "a style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "an event-handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "a javascript: URL": re.compile(r"=\s*[\"']?\s*javascript:", re.IGNORECASE),
}


def test_no_template_has_inline_script_or_style():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {what}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for what, pattern in INLINE.items()
        if pattern.search(line)
    ]
    assert found == []


# --- Swagger UI ----------------------------------------------------------------------------


def test_swagger_ui_keeps_no_token_in_local_storage(client):
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    text = script.content.decode()
    assert '"persistAuthorization": false' in text
    assert '"validatorUrl": null' in text


def test_the_readme_documents_every_setting_the_studio_reads_from_the_environment():
    # A new setting is one `env_*("TAILOR_…")` line in studio/settings.py (or
    # a studio/*_settings.py module it takes settings from) and one row of the
    # README's table (docs/architecture.md, "Add a setting").
    source = "\n".join(path.read_text() for path in (ROOT / "studio").glob("*settings.py"))
    read = set(re.findall(r"""env(?:_\w+)?\(\s*["'](TAILOR_\w+)["']""", source))
    read |= set(re.findall(r"""environ(?:\.get)?[\(\[]\s*["'](TAILOR_\w+)["']""", source))
    assert len(read) > 20
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    assert sorted(name for name in read if f"`{name}`" not in table) == []


def server_backends() -> set[int]:
    """The PostgreSQL server processes connected to the test database, but ours."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


@pytest.mark.integration
@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_web_server_reuses_its_postgresql_connections(monkeypatch):
    """Opening a connection per request cost 5 ms and a server process each
    (bench/load.py); the web server as `make run` starts it keeps a pool."""
    monkeypatch.setenv("TAILOR_WEB_WORKERS", "1")
    monkeypatch.delenv("TAILOR_FORWARDED_ALLOW_IPS", raising=False)  # loopback
    server, host = launched_web_server("uvicorn-pool")
    # One query each (the token's digest), over https as the proxy says.
    unknown_token = {**HTTPS_FROM_THE_PROXY, "Authorization": "Bearer not-a-token"}
    try:
        for _ in range(5):
            assert get(host, "/api/v1/jobs/", unknown_token)[0] == 401
        kept = server_backends()
        assert kept, "the server closed its connections after answering"
        for _ in range(20):
            assert get(host, "/api/v1/jobs/", unknown_token)[0] == 401
        # Twenty more requests, served over the connections already open.
        assert server_backends() <= kept
    finally:
        server.stop()
