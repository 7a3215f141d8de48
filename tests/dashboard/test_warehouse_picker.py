"""The job form's SQL warehouse picker offers created warehouses beside the configured ones, by
id with their names; a deleted one is no longer offered."""

from bs4 import BeautifulSoup
from django.urls import reverse

from warehouses import catalog


def offered(browser):
    page = BeautifulSoup(browser.get(reverse("jobs:new")).content, "html.parser")
    return {option["value"]: option.get_text() for option in page.select("datalist#warehouses option")}


def test_created_warehouses_are_offered_with_their_names_until_deleted(browser, user, settings):
    settings.LAKEFLOW_WAREHOUSES = {"default": "duckdb:///tmp/w.duckdb"}
    warehouse = catalog.create({"name": "Finance", "cluster_size": "Small"}, None, user)

    assert offered(browser) == {"default": "", warehouse.id: "Finance"}
    catalog.delete(warehouse.id)
    assert offered(browser) == {"default": ""}
