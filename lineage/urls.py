from django.urls import path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from lineage import views

urlpatterns = [
    path("lineage/", views.lineage_graph, name="graph"),
    # A dataset's name may be a path (/Volumes/..., s3://...): everything up to the last slash.
    path("lineage/tables/<path:name>/", views.table_page, name="table"),
    path("lineage/runs/<id:run_id>/card/", views.run_card, name="run_card"),
    path("lineage/runs/<id:run_id>/upstream/", views.run_upstream, name="upstream"),
    path("lineage/jobs/<id:job_id>/card/", views.job_card, name="job_card"),
]
