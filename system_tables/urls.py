from django.urls import path

from system_tables import api, pages

app_name = "system_tables"
urlpatterns = [
    path("sql/", pages.query_page, name="query"),
    path("sql/download.csv", pages.csv_download, name="csv"),
    path("sql/statements", api.statements, name="statements"),
]
