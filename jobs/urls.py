from django.urls import include, path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from jobs import views

urlpatterns = [
    path("", views.job_list, name="list"),
    path("jobs/<id:job_id>/", views.job_detail, name="detail"),
    path("jobs/<id:job_id>/run-now/", views.run_now, name="run_now"),
    path("", include("jobs.authoring_urls")),
]
