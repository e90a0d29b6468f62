"""The Celery application shared by the web process (to send) and workers."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [
    Queue(name) for name in ("default", "train", "infer", "evaluate", "maintenance")
]
app.autodiscover_tasks()
