from django.urls import path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from jobs import acl_pages, authoring, token_pages

urlpatterns = [
    path("jobs/new/", authoring.new_job, name="new"),
    path("jobs/new/source/", authoring.new_job_source, name="new_source"),
    path("jobs/<id:job_id>/edit/", authoring.edit_job, name="edit"),
    path("jobs/<id:job_id>/source/", authoring.edit_job_source, name="edit_source"),
    path("jobs/<id:job_id>/versions/", authoring.job_versions, name="versions"),
    path("jobs/<id:job_id>/disconnect/", authoring.disconnect_from_source, name="disconnect"),
    path("jobs/<id:job_id>/permissions/", acl_pages.change_permissions, name="permissions"),
    path("settings/tokens/", token_pages.token_settings, name="tokens"),
    path("settings/tokens/<id:token_id>/revoke/", token_pages.revoke_token, name="revoke_token"),
]
