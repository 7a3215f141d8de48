from django.urls import path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from runs import views

urlpatterns = [
    path("runs/", views.run_list, name="list"),
    path("runs/<id:run_id>/", views.run_redirect, name="redirect"),
    path("jobs/<id:job_id>/runs/<id:run_id>/", views.run_detail, name="detail"),
    path("runs/<id:run_id>/state/", views.run_state, name="state"),
    path("runs/<id:run_id>/cancel/", views.cancel_run, name="cancel"),
    path("runs/<id:run_id>/repair/", views.repair_run, name="repair"),
    path("task-runs/<id:task_run_id>/", views.task_panel, name="task_panel"),
    path("task-runs/<id:task_run_id>/log/", views.task_log, name="task_log"),
    path("task-runs/<id:task_run_id>/cancel/", views.cancel_task, name="cancel_task"),
    path("task-runs/<id:task_run_id>/output/", views.task_output_html, name="task_output_html"),
]
