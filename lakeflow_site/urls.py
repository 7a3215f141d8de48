from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from jobs import urls as jobs_urls
from runs import urls as runs_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("api.urls")),
    # jobs' own pages (authoring) and the pages of jobs that show runs, under one name: jobs:...
    path("", include((jobs_urls.urlpatterns + runs_urls.job_page_patterns, "jobs"))),
    path("", include(("runs.urls", "runs"))),
    path("", include(("lineage.urls", "lineage"))),
    path("", include(("audit.urls", "audit"))),
    path("", include("notifications.urls")),
    path("", include("backfills.urls")),
    path("", include("system_tables.urls")),
]
