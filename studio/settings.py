"""Tailor's settings, read from the environment (see README.md's table).

Tests change only speed knobs (the password hasher); Redis, the channel layer
and the database are the real ones in every setting.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from studio.env import env_bool, env_choice, env_int, env_list, env_path, env_str
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
    "studio",
    "datasets_app",
    "jobs",
    "serving",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

# --- Celery (see docs/architecture.md, "Durability") ---------------------------
# The queues a complete studio serves; /healthz wants a worker on each.
# default: dataset validation; train: one job per worker; infer: interactive
# generations only; evaluate: evaluations, so that they never hold up the
# playground or /v1/; maintenance: the reaper and dispatcher, where no long
# task can starve them.
TAILOR_QUEUES = ("default", "train", "infer", "evaluate", "maintenance")
CELERY_BROKER_URL = with_db(REDIS_URL, BROKER_DB)
CELERY_RESULT_BACKEND = with_db(REDIS_URL, RESULTS_DB)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# A message is acknowledged after its task returns, and a worker takes one
# message at a time: a long training job never sits reserved behind another.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Retry decisions belong to the job ledger (the reaper), not to the broker: a
# job that crashes its worker deterministically (out of memory) must not be
# redelivered forever.
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Longer than any job: Redis redelivers an unacknowledged message after this,
# and Celery never renews it while the task runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7 * 24 * 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_TRACK_STARTED = True
# Sending never waits for a broker that is down: the row is the outbox, and
# the dispatcher sends it when the broker is back (studio/services/leases.py).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2

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

CELERY_BEAT_SCHEDULE = {
    "maintenance": {
        "task": "studio.maintenance",
        "schedule": float(TAILOR_REAPER_INTERVAL_SECONDS),
        "options": {"queue": "maintenance", "expires": float(TAILOR_REAPER_INTERVAL_SECONDS)},
    },
    "housekeeping": {
        "task": "jobs.housekeeping",
        "schedule": float(TAILOR_HOUSEKEEPING_INTERVAL_SECONDS),
        "options": {
            "queue": "maintenance",
            "expires": float(TAILOR_HOUSEKEEPING_INTERVAL_SECONDS),
        },
    },
}

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "studio.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["studio.throttling.ApiTokenRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "studio.pagination.StudioPagination",
    "EXCEPTION_HANDLER": "studio.api_errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "studio.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tailor API",
    "DESCRIPTION": "Fine-tune, evaluate and serve small language models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayRequestDuration": True},
}

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
