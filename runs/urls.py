from django.urls import path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from runs import job_pages, usage_pages, views

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
    path("usage/", usage_pages.usage_page, name="usage"),
]

# In the "jobs" namespace (lakeflow_site/urls.py): the pages of jobs that show their runs.
job_page_patterns = [
    path("", job_pages.job_list, name="list"),
    path("jobs/<id:job_id>/", job_pages.job_detail, name="detail"),
    path("jobs/<id:job_id>/run-now/", job_pages.run_now, name="run_now"),
]
