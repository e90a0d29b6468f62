"""Tailor's project package: settings, URLs, ASGI routing, Celery app, accounts."""

from studio.celery import app as celery_app

__all__ = ["celery_app"]
