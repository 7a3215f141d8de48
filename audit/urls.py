from django.urls import path

from audit import pages

urlpatterns = [path("audit/", pages.audit_page, name="list")]
