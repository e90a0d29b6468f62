"""Celery's settings: fixed choices of the studio, none read from the
environment (see docs/architecture.md, "Durability"). `studio.settings`
takes them from here with the broker's address and the beat schedule, whose
intervals are settings, so that the settings module stays a page of switches.
"""

from kombu import Queue

# The queues a complete studio serves; /healthz wants a worker on each.
# default: dataset validation; train: one job per worker; infer: interactive
# generations only; evaluate: evaluations, so that they never hold up the
# playground or /v1/; maintenance: the reaper and dispatcher, where no long
# task can starve them.
TAILOR_QUEUES = ("default", "train", "infer", "evaluate", "maintenance")
CELERY_TASK_QUEUES = [Queue(name) for name in TAILOR_QUEUES]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# A message is acknowledged after its task returns, and a worker takes one
# message at a time: a long training job never sits reserved behind another.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# And none held in reserve while every slot is busy: a message waiting in the
# buffer of a worker whose run hangs (a paused child) is "in a worker's
# hands", so the dispatcher never sends it again and no idle worker can take
# it (seen in the zombie fault test). Redis brokers only, as ours is.
CELERY_WORKER_DISABLE_PREFETCH = True
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


def beat_schedule(*, reaper_seconds: int, housekeeping_seconds: int, survey_seconds: int) -> dict:
    """Beat's entries, all on the maintenance queue; each message expires
    after one interval, so that a beat that ran alone never piles them up."""
    entries = {
        "maintenance": ("studio.maintenance", reaper_seconds),
        "housekeeping": ("jobs.housekeeping", housekeeping_seconds),
        "storage-survey": ("ops.survey_storage", survey_seconds),
    }
    return {
        name: {
            "task": task,
            "schedule": float(seconds),
            "options": {"queue": "maintenance", "expires": float(seconds)},
        }
        for name, (task, seconds) in entries.items()
    }
