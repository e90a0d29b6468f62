"""Tailor's settings, read from the environment (see README.md's table).

Tests change only speed knobs (the password hasher); Redis, the channel layer
and the database are the real ones in every setting.
"""

import os
import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url

from studio.env import (
    env_bool,
    env_choice,
    env_currency,
    env_decimal,
    env_int,
    env_list,
    env_path,
    env_str,
)
from studio.redis_urls import BROKER_DB, CHANNEL_LAYER_DB, FLAGS_DB, RESULTS_DB, with_db

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once under var/.

    The file is created with O_EXCL so that processes starting together (web
    and workers) agree on one key instead of racing to write different ones.
    """
    given = env_str("SECRET_KEY")
    if given:
        return given
    path = VAR_DIR / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000, minimum=1)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", HOST])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind TLS, and the Content-Security-Policy: studio/security_settings.py.
from studio.security_settings import *  # noqa: E402, F403

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "django_htmx",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us: no CDN
    "axes",  # failed logins, and the lockout that follows them
    "csp",  # Content-Security-Policy: its checks of the settings
    "taggit",  # jobs' tags
    "studio",
    "datasets_app",
    "jobs",
    "serving",
    "audit",
    "ops",
    "quotas",
    "usage",
]

MIDDLEWARE = [
    # First, so that the latency it records for /metrics is the whole request's.
    "ops.metrics.RequestLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "studio.request_guards.RefuseNulMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the user is known: who acts, from where, through which door (audit/).
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "studio.middleware.RateLimitHeadersMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "studio.context_processors.navigation",
            ],
        },
    },
]

# SQLite under var/ by default: zero set-up. WAL, a busy timeout and
# IMMEDIATE transactions let the web process and the workers write side by
# side without "database is locked".
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tailor.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so that a worker or live server started by the
    # tests sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-tailor.sqlite3")}
elif env_bool("TAILOR_DB_POOL", False):
    # The web server borrows PostgreSQL connections from a pool per process
    # instead of opening one per request (5 ms and a server process each;
    # bench/load.py). Web only (its launchers set TAILOR_DB_POOL): a pool's
    # threads and sockets do not survive the fork of Celery's prefork workers.
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 2,
            "max_size": env_int("TAILOR_DB_POOL_SIZE", 8, minimum=2),
            "timeout": 10,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# A signed-in browser stays signed in this long after it logged in (or last
# changed its password), then logs in again; its open live pages close then
# too (studio/sockets.py). A week: someone who uses the studio daily logs in
# once a week, and a session left on a lost laptop ends within days.
TAILOR_SESSION_AGE_HOURS = env_int("TAILOR_SESSION_AGE_HOURS", 7 * 24, minimum=1)
SESSION_COOKIE_AGE = TAILOR_SESSION_AGE_HOURS * 3600
# In the database, as Django's default: ending a user's sessions
# (studio/services/sessions.py) deletes their rows.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out login before a password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Logins: password guessing (django-axes) ------------------------------------
# After TAILOR_LOGIN_FAILURE_LIMIT failed logins for one username, or from one
# client address, logging in is refused until TAILOR_LOGIN_LOCKOUT_MINUTES pass
# without another attempt; /login/ and /admin/login/ alike. API tokens are not
# passwords and are never locked out. 10 failures leave room for typos; 15
# minutes turn guessing into a few dozen tries an hour, and a locked-out
# person waits a coffee break. Locking by username lets anyone lock an account
# for that long; the lock ends by itself, and an operator can lift it sooner
# (`manage.py axes_reset_username NAME`, or delete its access attempts in the admin).
TAILOR_LOGIN_FAILURE_LIMIT = env_int("TAILOR_LOGIN_FAILURE_LIMIT", 10, minimum=1)
TAILOR_LOGIN_LOCKOUT_MINUTES = env_int("TAILOR_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = TAILOR_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=TAILOR_LOGIN_LOCKOUT_MINUTES)
# Each listed on its own: either one reaching the limit locks.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Not reset on success: axes would then delete every failure from that address,
# and one good login of one's own would reopen the guessing on someone else's.
AXES_RESET_ON_SUCCESS = False
# The client's address is REMOTE_ADDR (axes' default), which a client cannot
# forge; behind a proxy, have the server set it (uvicorn --forwarded-allow-ips).
AXES_LOCKOUT_CALLABLE = "studio.views.login_locked_out"
# Failed attempts are what the lockout needs; a row per successful login
# would only grow.
AXES_DISABLE_ACCESS_LOG = True

# --- The audit log (audit/) ------------------------------------------------------
# Entries older than this many days are deleted by the maintenance round; 0
# keeps them all. A year covers a yearly review and most retention policies;
# shorten it where a privacy rule asks (entries hold usernames and addresses).
TAILOR_AUDIT_RETENTION_DAYS = env_int("TAILOR_AUDIT_RETENTION_DAYS", 365, minimum=0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on a missing one
# Serve straight from the app and project folders: `make run` needs no
# collectstatic step, and a Docker image that ran collectstatic still works.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MODELS_ROOT = env_path("MODELS_ROOT", VAR_DIR / "models")

# Where files live across machines, which worker holds which job: studio/machine_settings.py.
from studio.machine_settings import *  # noqa: E402, F403

# Uploads: a dataset file may be this large. It streams to disk as it
# arrives (never whole into memory) and is refused as soon as it passes this.
# Only signed-in callers of the upload routes get it (datasets_app/uploads.py).
DATASET_MAX_UPLOAD_BYTES = env_int("DATASET_MAX_UPLOAD_BYTES", 1024**3, minimum=1)
# Every other request body, and any from a caller not signed in, is refused
# past this before it is read: the largest legitimate one, a chat request
# with a long prompt, is well under 1 MiB, and a job file is at most 64 KB.
TAILOR_MAX_REQUEST_BYTES = env_int("TAILOR_MAX_REQUEST_BYTES", 4 * 1024**2, minimum=64 * 1024)
# Django's own cap on a body it reads into memory (form fields, JSON): the same.
DATA_UPLOAD_MAX_MEMORY_SIZE = TAILOR_MAX_REQUEST_BYTES
FILE_UPLOAD_HANDLERS = ["datasets_app.uploads.SizeLimitedUploadHandler"]
# What one dataset may hold once validated (datasets_app/engine/limits.py);
# a file over one is invalid, with a sentence naming the limit.
# Two million records: a few hundred times the few-thousand-row sets Tailor
# trains well on, and about what a 1 GiB upload of 500-byte rows holds.
DATASET_MAX_ROWS = env_int("DATASET_MAX_ROWS", 2_000_000, minimum=1)
# A row of a million bytes is some 250,000 tokens, past any model's context.
DATASET_MAX_ROW_BYTES = env_int("DATASET_MAX_ROW_BYTES", 1_000_000, minimum=1024)
# Twice the largest upload: canonical JSON repeats the field names that a CSV
# or Parquet file states once.
DATASET_MAX_RECORDS_BYTES = env_int("DATASET_MAX_RECORDS_BYTES", 2 * 1024**3, minimum=1)
# Records at most 100 times the file's size: text compresses 3-10 fold, and a
# CSV of one-letter cells grows 8 fold as JSON; a Parquet file whose repeated
# values expand a thousand fold is a decompression bomb.
DATASET_MAX_EXPANSION = env_int("DATASET_MAX_EXPANSION", 100, minimum=1)

# --- Redis: broker, channel layer, flags --------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6390")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # channels_redis blocks up to 5 s in BZPOPMIN; redis-py's default socket
        # timeout is also 5 s and would turn an idle wait into an error.
        "CONFIG": {
            "hosts": [{"address": with_db(REDIS_URL, CHANNEL_LAYER_DB), "socket_timeout": 15}]
        },
    }
}
REDIS_FLAGS_URL = with_db(REDIS_URL, FLAGS_DB)
# API rate-limit counters: short-lived keys that expire by themselves, like flags.
REDIS_RATE_LIMIT_URL = REDIS_FLAGS_URL

# --- Celery (fixed choices; see studio/celery_settings.py) ---------------------
CELERY_BROKER_URL = with_db(REDIS_URL, BROKER_DB)
CELERY_RESULT_BACKEND = with_db(REDIS_URL, RESULTS_DB)
from studio.celery_settings import *  # noqa: E402, F403

# --- Jobs: leases, reaper, limits ----------------------------------------------
# A running job's worker renews its lease every TAILOR_HEARTBEAT_SECONDS; a
# lease not renewed for TAILOR_JOB_LEASE_SECONDS means the worker is gone, and
# the reaper (beat, every TAILOR_REAPER_INTERVAL_SECONDS) queues the job again
# to resume from its newest checkpoint, at most TAILOR_JOB_MAX_ATTEMPTS runs.
TAILOR_HEARTBEAT_SECONDS = env_int("TAILOR_HEARTBEAT_SECONDS", 30, minimum=1)
TAILOR_JOB_LEASE_SECONDS = env_int("TAILOR_JOB_LEASE_SECONDS", 120, minimum=2)
TAILOR_REAPER_INTERVAL_SECONDS = env_int("TAILOR_REAPER_INTERVAL_SECONDS", 30, minimum=1)
TAILOR_JOB_MAX_ATTEMPTS = env_int("TAILOR_JOB_MAX_ATTEMPTS", 3, minimum=1)
# A queued job whose message is in neither the queue nor a worker's hands
# after this long is sent again.
TAILOR_DISPATCH_GRACE_SECONDS = env_int("TAILOR_DISPATCH_GRACE_SECONDS", 60, minimum=1)
# A run (of any kind of work) whose step, token or chunk counter has not
# moved for this long is stalled: it is ended, and its work resumed or failed
# as "stalled". Generous: loading a large model from disk, or a long
# evaluation between two steps, must not count as a stall.
TAILOR_STALL_SECONDS = env_int("TAILOR_STALL_SECONDS", 1800, minimum=2)
# A cancelled job whose run has not stopped after this long is ended by force
# (its process too): a hung step never keeps a cancel waiting.
TAILOR_CANCEL_GRACE_SECONDS = env_int("TAILOR_CANCEL_GRACE_SECONDS", 60, minimum=1)
# A worker's writes wait this long for a database that restarts.
TAILOR_DATABASE_RETRY_SECONDS = env_int("TAILOR_DATABASE_RETRY_SECONDS", 120, minimum=0)
# Full fine-tunes are offered up to this many parameters (16 bytes each).
TAILOR_FULL_FINETUNE_MAX_PARAMETERS = env_int(
    "TAILOR_FULL_FINETUNE_MAX_PARAMETERS", 1_000_000_000, minimum=0
)
# Effective training throughput of the workers' device, in FLOP/s, for the
# time estimate before Start. The default is what this project's CPU
# reference machine reaches (2 cores, AVX2: tailor-tiny at ~1,900 tokens/s
# and MiniLM at ~730, i.e. 4-7e10); a GPU is far faster (an H100: ~2e14).
TAILOR_TRAIN_FLOPS = float(env_int("TAILOR_TRAIN_FLOPS", 50_000_000_000, minimum=1))
# Checkpoints hold the optimizer's state (twice the adapter; for a full
# fine-tune twice the model). A finished job keeps them this long, then only
# its adapter: 72 hours spans a weekend, to resume a failed job or look back
# at a finished one, without letting them fill the disk (0: drop them at once).
TAILOR_KEEP_CHECKPOINTS_HOURS = env_int("TAILOR_KEEP_CHECKPOINTS_HOURS", 72, minimum=0)
# Housekeeping (beat, on the maintenance queue) applies that and sweeps
# half-written files every this many seconds: files wait an hour to be swept,
# so every ten minutes is prompt enough and costs a directory walk.
TAILOR_HOUSEKEEPING_INTERVAL_SECONDS = env_int(
    "TAILOR_HOUSEKEEPING_INTERVAL_SECONDS", 600, minimum=1
)
# --- Quotas and fair share (quotas/services/) -------------------------------
# Training jobs sent to workers at once (a queued job waits, held, for a free
# slot): the number of training workers, which `make run` starts one of.
# 0: no cap (every queued job is sent at once, as with no quotas).
TAILOR_TRAINING_SLOTS = env_int("TAILOR_TRAINING_SLOTS", 1, minimum=0)
# Per-user defaults (operators override them per user or group in the admin);
# 0: unlimited. Over the running limit a job waits queued; the others refuse.
TAILOR_QUOTA_RUNNING_JOBS = env_int("TAILOR_QUOTA_RUNNING_JOBS", 0, minimum=0)
TAILOR_QUOTA_QUEUED_JOBS = env_int("TAILOR_QUOTA_QUEUED_JOBS", 0, minimum=0)
TAILOR_QUOTA_STORAGE_BYTES = env_int("TAILOR_QUOTA_STORAGE_BYTES", 0, minimum=0)
TAILOR_QUOTA_STEPS_PER_JOB = env_int("TAILOR_QUOTA_STEPS_PER_JOB", 0, minimum=0)
TAILOR_QUOTA_DEVICE_HOURS_PER_MONTH = env_int("TAILOR_QUOTA_DEVICE_HOURS_PER_MONTH", 0, minimum=0)
# Prompt plus completion tokens the inference workers serve one user in a UTC day.
TAILOR_QUOTA_TOKENS_PER_DAY = env_int("TAILOR_QUOTA_TOKENS_PER_DAY", 0, minimum=0)

# --- Usage and cost (usage/) --------------------------------------------------
# What a device-hour costs when operators have set no price for that kind of
# device (Admin → Device prices); 0: no cost is shown anywhere.
TAILOR_PRICE_PER_DEVICE_HOUR = env_decimal("TAILOR_PRICE_PER_DEVICE_HOUR", "0", minimum=Decimal(0))
TAILOR_CURRENCY = env_currency("TAILOR_CURRENCY", "USD")

# --- Serving ----------------------------------------------------------------
# The inference worker keeps base models loaded (adapters attach to them) and
# evicts the least recently used when the next would pass this budget.
TAILOR_SERVING_MEMORY_MB = env_int("TAILOR_SERVING_MEMORY_MB", 8192, minimum=64)
# The most tokens one answer may have (playground and /v1/ completions).
TAILOR_MAX_NEW_TOKENS = env_int("TAILOR_MAX_NEW_TOKENS", 1024, minimum=1)
# A request no inference worker has taken after this long fails with a clear
# message (and the worker drops it if it ever gets there); once taken, a
# request that is silent this long (no token, no progress) is given up.
TAILOR_GENERATION_START_TIMEOUT_SECONDS = env_int(
    "TAILOR_GENERATION_START_TIMEOUT_SECONDS", 60, minimum=1
)
TAILOR_GENERATION_IDLE_TIMEOUT_SECONDS = env_int(
    "TAILOR_GENERATION_IDLE_TIMEOUT_SECONDS", 600, minimum=1
)
# Validation rows generated from, per model, when a job is evaluated
# (exact match and ROUGE-L); the loss is computed on up to 512 rows.
TAILOR_EVAL_SAMPLE_SIZE = env_int("TAILOR_EVAL_SAMPLE_SIZE", 50, minimum=1)

# --- API tokens ---------------------------------------------------------------
# Requests a minute one user's API tokens may make together, on /api/v1/ and
# /v1/ alike (0: unlimited); a token may have its own limit too. 600 (10 a
# second) is far above what a script that waits for answers sends, and stops
# one stuck in a loop from crowding out everyone else. Browser sessions are
# not limited.
TAILOR_API_RATE_LIMIT = env_int("TAILOR_API_RATE_LIMIT", 600, minimum=0)
# Tokens one user may hold (expired ones count until revoked). A person runs
# a handful of scripts, one token each; 50 leaves room for many more, and
# stops a script that mints tokens in a loop from spreading live secrets
# without end.
TAILOR_MAX_TOKENS_PER_USER = env_int("TAILOR_MAX_TOKENS_PER_USER", 50, minimum=1)

# --- Operations (ops/) ----------------------------------------------------------
# Every worker reports itself to Redis this often; one that misses 3 beats is
# shown red on /ops/ (and `up 0` on /metrics) until its record expires (30 beats).
TAILOR_WORKER_HEARTBEAT_SECONDS = env_int("TAILOR_WORKER_HEARTBEAT_SECONDS", 10, minimum=1)
# Beat measures the media folder (a walk of every file) this often, on the
# maintenance queue; /ops/ shows the last measure and when it was taken.
TAILOR_STORAGE_SURVEY_SECONDS = env_int("TAILOR_STORAGE_SURVEY_SECONDS", 900, minimum=10)
# A bearer token a Prometheus scraper sends to /metrics (besides staff
# sessions and staff API tokens); empty: no scraper token.
TAILOR_METRICS_TOKEN = env_str("TAILOR_METRICS_TOKEN", "")

CELERY_BEAT_SCHEDULE = beat_schedule(  # noqa: F405
    reaper_seconds=TAILOR_REAPER_INTERVAL_SECONDS,
    housekeeping_seconds=TAILOR_HOUSEKEEPING_INTERVAL_SECONDS,
    survey_seconds=TAILOR_STORAGE_SURVEY_SECONDS,
)

# --- REST API (fixed choices; see studio/api_settings.py) ---------------------
from studio.api_settings import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: E402, F401

# --- Logging ----------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

if env_bool("TAILOR_FAST_PASSWORD_HASHER", False):
    # Tests only: hashing with PBKDF2's real cost makes every login slow.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
