"""The Workspace API, in the shapes of the databricks-sdk's `w.workspace` (import, export,
mkdirs, delete, get-status, list under /api/2.0/workspace/, and `upload`'s multipart import)
and of the Databricks CLI's bundle file sync (POST /api/2.0/workspace-files/import-file/<path>,
a raw body). Paths may carry the /Workspace prefix or not. Storage and its rules: workspace/.

Who may do what: any signed-in caller reads; a user or service principal writes under
/Workspace/Users/<own user name or application id>/ and /Workspace/Shared/, admins anywhere; a
task's run-as token never writes (tasks must not rewrite code other runs execute). One import
holds at most 10 MB, as on Databricks (MAX_NOTEBOOK_SIZE_EXCEEDED beyond it).
"""

import base64
import binascii
import errno
import math
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError

from api.http import ApiError, api_view, bool_param, int_param, invalid, json_object_of, str_param
from jobs.models import acts_for_a_task
from jobs.permissions import caller_of
from workspace import store
from workspace.rules import (
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    MAX_IMPORT_BYTES,
    SOURCE_NOTEBOOKS,
    WorkspaceRefused,
    too_large,
    workspace_parts,
    write_refusal,
)

# A JSON import carries its content in base64, a third larger, beside a few small fields.
MAX_JSON_IMPORT_BYTES = 4 * math.ceil(MAX_IMPORT_BYTES / 3) + 64 * 1024


def refusals(view):
    """workspace's refusals as their Databricks codes."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except WorkspaceRefused as exc:
            raise ApiError(exc.http_status, exc.error_code, exc.message) from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise invalid("path is too long for this server's file system") from None
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):  # how the server was set up
                raise ApiError(500, "INTERNAL_ERROR", f"The server cannot change its workspace directory "
                                                      f"({exc.strerror}): LAKEFLOW_WORKSPACE_FILES_DIR must be "
                                                      "writable by the web process") from None
            raise

    return wrapper


def path_param(data):
    return workspace_parts(str_param(data, "path", required=True))


def check_may_write(request, parts, making_directories=False):
    user = request.user
    refusal = write_refusal(parts, user_name=user.get_username(), is_admin=caller_of(user).is_admin,
                            for_a_task=acts_for_a_task(user), making_directories=making_directories)
    if refusal:
        raise ApiError(403, "PERMISSION_DENIED", refusal)


# --- request bodies that carry a file ------------------------------------------------------------


def bounded_body(request, limit):
    """The raw body, up to ``limit`` bytes (more than the API's usual request limit allows)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise too_large_request(length)
    try:
        raw = request.body
    except RequestDataTooBig:  # past DATA_UPLOAD_MAX_MEMORY_SIZE, unread: this endpoint allows `limit`
        raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_large_request(len(raw))
    return raw


def too_large_request(size):
    return ApiError(400, "MAX_NOTEBOOK_SIZE_EXCEEDED", f"The request is {size:,} bytes: an import may hold at most "
                                                       f"{MAX_IMPORT_BYTES:,} bytes of content")


def import_body(request):
    """POST /workspace/import: JSON with base64 `content`, or the SDK's multipart form with a
    `content` file part. The content goes to request.import_content, the other fields are the data."""
    if request.content_type == "multipart/form-data":
        try:
            data, upload = request.POST.dict(), request.FILES.get("content")
        except (RequestDataTooBig, MultiPartParserError) as exc:
            raise ApiError(400, "MALFORMED_REQUEST", f"The multipart form cannot be read: {exc}") from None
        if upload is not None:
            if upload.size > MAX_IMPORT_BYTES:
                raise ApiError(*error_args(too_large(upload.size)))
            request.import_content = upload.read()
            data.pop("content", None)
            return data
    else:
        data = json_object_of(bounded_body(request, MAX_JSON_IMPORT_BYTES))
    content = data.pop("content", None)
    if not isinstance(content, str):
        raise invalid("content is required: the file's bytes in base64")
    if len(content) > 4 * math.ceil(MAX_IMPORT_BYTES / 3) + 4:
        raise ApiError(*error_args(too_large(len(content) * 3 // 4)))
    try:
        request.import_content = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("content must be base64") from None
    return data


def raw_file_body(request):
    """POST /workspace-files/import-file/<path>: the file is the body; the query has `overwrite`."""
    request.import_content = bounded_body(request, MAX_IMPORT_BYTES)
    return request.GET.dict()


def error_args(refused):
    return refused.http_status, refused.error_code, refused.message


# --- the endpoints ------------------------------------------------------------------------------


@api_view("POST", body=import_body)
@refusals
def import_object(request, data):
    parts = path_param(data)
    fmt = str_param(data, "format", default="SOURCE", choices=IMPORT_FORMATS)
    language = str_param(data, "language", choices=tuple(SOURCE_NOTEBOOKS))
    overwrite = bool_param(data, "overwrite")
    check_may_write(request, parts)
    store.import_object(parts, request.import_content, fmt, language, overwrite)
    return {}


@api_view("POST", body=raw_file_body)
@refusals
def import_file(request, data, file_path):
    parts = workspace_parts("/" + file_path)
    overwrite = bool_param(data, "overwrite")
    check_may_write(request, parts)
    # The Databricks CLI's filer reads 409 as "the file exists" (fs.ErrExist: the deploy lock).
    store.import_object(parts, request.import_content, "AUTO", None, overwrite, http_status_if_exists=409)
    return {}


@api_view("GET")
@refusals
def export_object(request, data):
    parts = path_param(data)
    fmt = str_param(data, "format", default="SOURCE", choices=EXPORT_FORMATS)
    content, extension = store.export_object(parts, fmt)
    if bool_param(data, "direct_download"):
        return HttpResponse(content, content_type="application/octet-stream")
    return {"content": base64.b64encode(content).decode(), "file_type": extension}


@api_view("POST")
@refusals
def mkdirs(request, data):
    parts = path_param(data)
    check_may_write(request, parts, making_directories=True)
    store.make_directories(parts)
    return {}


@api_view("POST")
@refusals
def delete(request, data):
    parts = path_param(data)
    recursive = bool_param(data, "recursive")
    check_may_write(request, parts)
    store.delete_object(parts, recursive)
    return {}


@api_view("GET")
@refusals
def get_status(request, data):
    return store.get_status(path_param(data), export_info=bool_param(data, "return_export_info"))


@api_view("GET")
@refusals
def list_objects(request, data):
    after = int_param(data, "notebooks_modified_after", low=0)
    return {"objects": store.list_directory(path_param(data), notebooks_modified_after=after)}
