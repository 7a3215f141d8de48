"""The Notification Destinations API, in the shapes of the databricks-sdk's
`w.notification_destinations`: create, list, get, update (PATCH) and delete under
/api/2.0/notification-destinations.

Who may do what: workspace admins create, update and delete; anyone signed in lists and gets
(jobs name destinations by id), and only admins get a destination's config, as on Databricks.
Write-only fields (webhook URLs, the PagerDuty key, Basic credentials) are never answered: the
config says `<field>_set: true` instead. The check of a config is notifications/destinations.py's,
shared with the dashboard's form."""

from django.db.models import Q

from api.http import (ApiError, api_view, does_not_exist, require_admin, encode_page_token, int_param, invalid, methods,
                      not_our_page_token, object_param, page_token_position, str_param)
from jobs.permissions import caller_of
from notifications import destinations
from notifications.models import Destination
from vault.crypto import Unreadable

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def admin_only(request, doing):
    require_admin(request, f"{doing} notification destinations")


def found(destination_id):
    destination = destinations.find(destination_id)
    if destination is None:
        raise does_not_exist("Notification destination", destination_id)
    return destination


def answered_config(destination):
    """The Config as Databricks answers it: readable fields as stored, write-only ones as `_set` flags."""
    kind = destination.destination_type
    try:
        secrets = destination.secrets
    except Unreadable as exc:  # LAKEFLOW_SECRETS_KEY changed: say so rather than a bare 500
        raise ApiError(500, "INTERNAL_ERROR", str(exc)) from None
    fields = {name: destination.config[name] for name in destinations.READABLE_FIELDS.get(kind, ())
              if name in destination.config}
    fields.update({f"{name}_set": name in secrets for name in destinations.SECRET_FIELDS.get(kind, ())})
    return {destinations.BLOCK_OF_TYPE[kind]: fields}


def destination_body(destination, request):
    body = {"id": destination.id, "display_name": destination.display_name,
            "destination_type": destination.destination_type}
    if caller_of(request.user).is_admin:
        body["config"] = answered_config(destination)
    return body


def given(data):
    """(display_name, config) as the body gives them, None where absent."""
    return (str_param(data, "display_name", max_length=destinations.MAX_DISPLAY_NAME),
            object_param(data, "config"))


def page_position(token):
    """The (display_name, id) a page token continues after."""
    try:
        name, after = page_token_position(token)["after"]
        if isinstance(name, str) and isinstance(after, str):
            return name, after
    except (ValueError, TypeError, KeyError):
        pass
    raise not_our_page_token(token)


@api_view("POST")
def create(request, data):
    admin_only(request, "create")
    display_name, config = given(data)
    return destination_body(destinations.create_destination(display_name, config, request.user), request)


@api_view("GET")
def list_destinations(request, data):
    """By display name then id, keyset-paged: a page token names the last row it answered."""
    size = int_param(data, "page_size", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    token = str_param(data, "page_token")
    rows = Destination.objects.order_by("display_name", "id")
    if token:
        name, after = page_position(token)
        rows = rows.filter(Q(display_name__gt=name) | Q(display_name=name, id__gt=after))
    page = list(rows.only("id", "display_name", "destination_type")[:size + 1])
    body = {"results": [{"id": d.id, "display_name": d.display_name, "destination_type": d.destination_type}
                        for d in page[:size]]}
    if len(page) > size:
        body["next_page_token"] = encode_page_token({"after": [page[size - 1].display_name, page[size - 1].id]})
    return body


@api_view("GET")
def get(request, data, destination_id):
    return destination_body(found(destination_id), request)


@api_view("PATCH")
def update(request, data, destination_id):
    admin_only(request, "update")
    display_name, config = given(data)
    if display_name is None and config is None:
        raise invalid("Give display_name, config or both: there is nothing to update")
    destination = found(destination_id)
    try:
        updated = destinations.update_destination(destination, display_name, config)
    except Unreadable as exc:
        raise ApiError(500, "INTERNAL_ERROR", str(exc)) from None
    if updated is None:  # deleted since it was read
        raise does_not_exist("Notification destination", destination_id)
    return destination_body(updated, request)


@api_view("DELETE")
def delete(request, data, destination_id):
    admin_only(request, "delete")
    destinations.delete_destination(found(destination_id))
    return {}


collection = methods(get=list_destinations, post=create)
one = methods(get=get, patch=update, delete=delete)
