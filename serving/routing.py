from django.urls import path

from serving.consumers import PlaygroundConsumer

websocket_urlpatterns = [
    path("ws/playground/", PlaygroundConsumer.as_asgi()),
]
