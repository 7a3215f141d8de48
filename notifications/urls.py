"""The notifications app's pages, under the namespace notifications: (lakeflow_site/urls.py)."""

from django.urls import path

import jobs.query_params  # noqa: F401  (registers the <id:...> path converter)
from notifications import pages, run_cards

app_name = "notifications"

urlpatterns = [
    path("notification-destinations/", pages.destination_list, name="destinations"),
    path("notification-destinations/new/", pages.new_destination, name="new"),
    path("notification-destinations/<str:destination_id>/edit/", pages.edit_destination, name="edit"),
    path("notification-destinations/<str:destination_id>/delete/", pages.delete_destination, name="delete"),
    path("notification-destinations/<str:destination_id>/test/", pages.send_test, name="test"),
]

# --- The notification cards of run and job pages (notifications/run_cards.py) -----------------
# Their routes are appended here.
urlpatterns += [
    path("notifications/runs/<id:run_id>/card/", run_cards.run_card, name="run_card"),
    path("notifications/jobs/<id:job_id>/card/", run_cards.job_card, name="job_card"),
    path("notifications/failures/", run_cards.failures_summary, name="failures_summary"),
]
