"""The backfills app's pages, under the namespace backfills: (lakeflow_site/urls.py)."""

from django.urls import path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from backfills import pages

app_name = "backfills"

urlpatterns = [
    path("jobs/<id:job_id>/backfill/", pages.new_backfill, name="new"),
    path("jobs/<id:job_id>/backfills/card/", pages.job_card, name="job_card"),
    path("backfills/<id:backfill_id>/", pages.backfill_page, name="detail"),
    path("backfills/<id:backfill_id>/status/", pages.status, name="status"),
    path("backfills/<id:backfill_id>/cancel/", pages.cancel, name="cancel"),
    path("backfills/<id:backfill_id>/repair-failed/", pages.repair_failed, name="repair_failed"),
]
