"""The Celery application shared by the web process (to send) and workers."""

import os

from celery import Celery
from celery.signals import beat_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@beat_init.connect
def reap_when_beat_starts(sender, **kwargs) -> None:
    """Run the maintenance round (the reaper) as soon as beat starts, not one
    interval later: `/healthz` counts the reaper down until its first round,
    and whatever a dead studio left running is taken back at once."""
    entry = sender.app.conf.beat_schedule["maintenance"]
    sender.app.send_task(entry["task"], **entry["options"])


@worker_process_shutdown.connect
def send_pending_live_events(**kwargs) -> None:
    """A worker process that exits (recycled, or the worker stopping) first
    sends the live events its last task handed over, so open pages see a
    run's last figures without waiting for their next reconnect."""
    from studio.events import drain

    drain(timeout=3)
