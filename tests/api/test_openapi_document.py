"""/api/2.2/openapi.json: public, the file api/openapi.yaml, and a path for every endpoint."""

import yaml

from api.urls import ENDPOINTS

DOCUMENT = yaml.safe_load(open("api/openapi.yaml"))


def test_the_document_is_served_as_json_without_a_token(client):
    response = client.get("/api/2.2/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == DOCUMENT


def test_the_document_has_every_endpoint_with_the_method_its_view_takes(api):
    documented = {(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item}
    # A view answers any method but its own with 405.
    expected = {("POST" if api.get(route).status_code == 405 else "GET", f"/{route}") for route, _ in ENDPOINTS}

    assert documented == expected


def test_every_operation_declares_its_errors_in_the_error_shape():
    error = {"$ref": "#/components/schemas/Error"}
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"200", "400", "401", "503"} <= codes, (method, path)
    for name, response in DOCUMENT["components"]["responses"].items():
        if name != "Empty":
            assert response["content"]["application/json"]["schema"] == error, name
