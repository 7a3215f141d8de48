"""One bounded, typed reader for what dashboard pages read from their URLs: query parameters
and the ids in paths. A value out of range or not a number is a 400 (or, for a path, no page:
404), never an exception deeper down ("²".isdigit() is True; SQLite takes no integer past int64).
"""

from django.core.exceptions import BadRequest
from django.urls import register_converter

from jobs.spec.documents import INT64_MAX, DocumentRefused, bounded_int


def query_int(request, name, default=None, *, low=0, high=INT64_MAX):
    """The query parameter `name` as an int between low and high; `default` when absent or empty."""
    text = request.GET.get(name, "")
    if not text.strip():
        return default
    try:
        return bounded_int(text, name, low=low, high=high)
    except DocumentRefused as exc:
        raise BadRequest(f"The query parameter {exc}") from None


class IdConverter:
    """`<id:job_id>`: a positive int64 in plain digits; anything else matches no URL (404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value):
        number = int(value)
        if not 1 <= number <= INT64_MAX:
            raise ValueError(value)  # the URL resolver then tries the next pattern: a 404 in the end
        return number

    def to_url(self, value):
        return str(int(value))


register_converter(IdConverter, "id")
