"""The web process stays light: it never imports the ML stack."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "studio.settings"
import django
django.setup()
import studio.asgi  # the web server's entry point
from django.urls import get_resolver
from django.test import Client
from django.contrib.auth import get_user_model

# Resolve every URL pattern (imports every view module) ...
def walk(patterns):
    for p in patterns:
        if hasattr(p, "url_patterns"):
            walk(p.url_patterns)
        else:
            p.callback
walk(get_resolver().url_patterns)
# ... and render every page the way a browser would.
from django.test.utils import setup_test_environment
setup_test_environment()
from django.db import connection
connection.creation.create_test_db(verbosity=0)
user = get_user_model().objects.create_user("probe", password="x", is_staff=True, is_superuser=True)
client = Client()
client.force_login(user)
PAGES = ["/", "/datasets/", "/jobs/", "/jobs/new/", "/playground/", "/models/", "/tokens/",
         "/admin/", "/admin/jobs/finetunejob/", "/admin/jobs/catalogmodel/", "/api/v1/me/",
         "/api/v1/jobs/", "/api/v1/models/", "/api/schema/"]
for path in PAGES:
    assert client.get(path).status_code == 200, path
from studio.services.tokens import create_token
secret = create_token(user, "probe").secret
assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
# What sending a training or inference task imports (the task modules, not what they run).
import jobs.tasks, jobs.worker, jobs.training, serving.tasks, serving.engine
HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "trl", "datasets", "accelerate",
         "wandb", "mlflow")
print(",".join(m for m in HEAVY if m in sys.modules) or "none")
"""


def run_probe(code: str, tmp_path, **extra) -> str:
    """`code` in a fresh interpreter with a bare environment (and `extra`); its output."""
    bare = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:1"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**bare, **extra},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_web_process_never_imports_torch_or_transformers(tmp_path):
    output = run_probe(PROBE, tmp_path, TAILOR_FAST_PASSWORD_HASHER="1")
    assert output.strip().splitlines()[-1] == "none"


def test_the_web_entry_point_keeps_its_startup_objects_out_of_full_collections(tmp_path):
    """studio.asgi loads every view, then freezes what it made: a full garbage
    collection in a serving process scans only what requests made (a 70-100 ms
    pause otherwise, bench/load.py's p99)."""
    probe = (
        "import gc, os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'studio.settings'; "
        "import studio.asgi; print(gc.get_freeze_count(), 'jobs.api' in sys.modules)"
    )
    frozen, views_loaded = run_probe(probe, tmp_path).split()
    assert int(frozen) > 50_000
    assert views_loaded == "True"
