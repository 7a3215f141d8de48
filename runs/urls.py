from django.urls import path

from runs import views

urlpatterns = [
    path("runs/", views.run_list, name="list"),
    path("runs/<int:run_id>/", views.run_redirect, name="redirect"),
    path("jobs/<int:job_id>/runs/<int:run_id>/", views.run_detail, name="detail"),
    path("runs/<int:run_id>/state/", views.run_state, name="state"),
    path("runs/<int:run_id>/cancel/", views.cancel_run, name="cancel"),
    path("runs/<int:run_id>/repair/", views.repair_run, name="repair"),
    path("task-runs/<int:task_run_id>/", views.task_panel, name="task_panel"),
    path("task-runs/<int:task_run_id>/log/", views.task_log, name="task_log"),
    path("task-runs/<int:task_run_id>/cancel/", views.cancel_task, name="cancel_task"),
    path("task-runs/<int:task_run_id>/output/", views.task_output_html, name="task_output_html"),
]
