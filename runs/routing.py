from django.urls import path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from runs.consumers import RunConsumer

websocket_urlpatterns = [path("ws/runs/<id:run_id>/", RunConsumer.as_asgi())]
