from django.urls import include, path

from jobs import views

urlpatterns = [
    path("", views.job_list, name="list"),
    path("jobs/<int:job_id>/", views.job_detail, name="detail"),
    path("jobs/<int:job_id>/run-now/", views.run_now, name="run_now"),
    path("", include("jobs.authoring_urls")),
]
