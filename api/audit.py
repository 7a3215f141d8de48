"""Ours: the audit log as JSON, for admins, each row in system.access.audit's shape; newest
first, filtered like the Audit page, paged with a token."""

from api.http import ApiError, api_view, decode_page_token, encode_page_token, id_param, int_param, invalid, str_param
from audit.query import BadFilter, as_system_row, filtered, page
from jobs.permissions import caller_of


@api_view("GET")
def list_audit_events(request, data):
    if not caller_of(request.user).is_admin:
        raise ApiError(403, "PERMISSION_DENIED", f"User {request.user.get_username()} is not an admin: "
                                                 "only workspace admins read the audit log")
    token = str_param(data, "page_token")
    before = decode_page_token(token, "before_event")["before_event"] if token else None
    try:
        rows = filtered(user_name=str_param(data, "user_name", max_length=200) or "",
                        action=str_param(data, "action_name", max_length=120) or "",
                        job_id=id_param(data, "job_id", required=False),
                        since=str_param(data, "start_time", max_length=64) or "",
                        until=str_param(data, "end_time", max_length=64) or "", before=before,
                        time_names=("start_time", "end_time"))
        listed, next_before = page(rows, int_param(data, "limit", default=100, low=1, high=1000))
    except BadFilter as exc:
        raise invalid(str(exc)) from None
    body = {"events": [as_system_row(event) for event in listed]}
    if next_before is not None:
        body["next_page_token"] = encode_page_token({"before_event": next_before})
    return body
