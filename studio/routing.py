"""Websocket routes of every app, gathered for the ASGI router."""

from datasets_app.routing import websocket_urlpatterns as dataset_routes
from jobs.routing import websocket_urlpatterns as job_routes
from serving.routing import websocket_urlpatterns as serving_routes

websocket_urlpatterns = [*dataset_routes, *job_routes, *serving_routes]
