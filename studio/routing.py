"""Websocket routes of every app, gathered for the ASGI router."""

from datasets_app.routing import websocket_urlpatterns as dataset_routes

websocket_urlpatterns = [*dataset_routes]
