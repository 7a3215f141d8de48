"""Notification destinations: what a destination's config may hold (one check for the API and the
dashboard's form), writing them, the jobs that name them, and the save-time check that a job
names existing ones.

A config is the databricks-sdk's `Config`: exactly one of email, slack, microsoft_teams,
pagerduty, generic_webhook. Its write-only fields (SECRET_FIELDS) are kept encrypted in
Destination.secrets and never answered; the rest (email addresses) in Destination.config."""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from jobs.spec.notifications import destination_ids, is_email_address
from jobs.spec.settings import Problem, SettingsInvalid
from notifications.models import Destination

# The config's block for each type, in the SDK's order of DestinationType.
BLOCKS = {"email": "EMAIL", "slack": "SLACK", "microsoft_teams": "MICROSOFT_TEAMS", "pagerduty": "PAGERDUTY",
          "generic_webhook": "WEBHOOK"}
BLOCK_OF_TYPE = {kind: block for block, kind in BLOCKS.items()}
SECRET_FIELDS = {"SLACK": ("url",), "MICROSOFT_TEAMS": ("url",), "PAGERDUTY": ("integration_key",),
                 "WEBHOOK": ("url", "username", "password")}
READABLE_FIELDS = {"EMAIL": ("addresses",)}
REQUIRED_FIELD = {"EMAIL": "addresses", "SLACK": "url", "MICROSOFT_TEAMS": "url", "PAGERDUTY": "integration_key",
                  "WEBHOOK": "url"}
OPTIONAL_FIELDS = ("username", "password")  # a generic webhook's HTTP Basic authentication
# Secrets given for one URL: a new URL drops them unless they are given again with it, or an admin
# could point the URL at a host of theirs, press Send test and receive them.
BOUND_TO_URL = {"WEBHOOK": ("username", "password")}
# What the SDK knows and this server does not: posting through a Slack bot or a Teams app.
APP_FIELDS = {"slack": ("channel_id", "oauth_token"),
              "microsoft_teams": ("app_id", "auth_secret", "tenant_id", "channel_url")}
APP_BLOCKS = ("databricks_app_slack", "databricks_app_teams")
WEBHOOKS_ONLY = ("this server posts to incoming-webhook URLs only (config.slack.url, config.microsoft_teams.url); "
                 "Slack bots, Teams apps and the Databricks apps are not supported")
MAX_DISPLAY_NAME = 255
MAX_ADDRESSES = 100
MAX_URL = 2048
MAX_SECRET = 1024
# Ids are UUIDs; anything else names no destination and is never sent to the database (Postgres
# refuses a NUL in a query, for one).
ID = re.compile(r"[A-Za-z0-9-]{1,36}")


@dataclass(frozen=True)
class Checked:
    """What a destination becomes: its type, readable config and write-only secrets."""
    destination_type: str
    config: dict
    secrets: dict


# --- the check (pure) --------------------------------------------------------------------


def checked_destination(display_name, config, *, current=None):
    """(display name, Checked) for a new destination (`current` None: both required) or for a
    change to `current` (a Checked): None keeps what it has; a config of the same type keeps the
    fields it omits (secrets cannot be read back to be sent again) except the credentials of a
    URL it changes (BOUND_TO_URL), a config of another type must be whole. Raises SettingsInvalid
    naming every field at fault, never echoing a secret."""
    problems = []
    if display_name is not None or current is None:
        display_name = (display_name or "").strip()
        if not display_name:
            problems.append(Problem("display_name", "is required and must not be blank"))
        elif len(display_name) > MAX_DISPLAY_NAME:
            problems.append(Problem("display_name", f"must be at most {MAX_DISPLAY_NAME} characters long"))
    if config is None and current is None:
        problems.append(Problem("config", "is required: exactly one of " + ", ".join(BLOCKS)))
    result = current
    if config is not None:
        result = _checked_config(config, current, problems)
    if problems:
        raise SettingsInvalid(problems)
    return display_name, result


def _checked_config(config, current, problems):
    before = len(problems)
    if not isinstance(config, dict):
        problems.append(Problem("config", "must be an object with exactly one of " + ", ".join(BLOCKS)))
        return None
    given = [key for key, value in config.items() if value is not None]
    for key in given:
        if key in APP_BLOCKS:
            problems.append(Problem(f"config.{key}", WEBHOOKS_ONLY))
        elif key not in BLOCKS:
            problems.append(Problem(f"config.{key}", "is not a destination type; the types are " + ", ".join(BLOCKS)))
    blocks = [key for key in given if key in BLOCKS]
    if len(blocks) != 1:
        if not any(key in APP_BLOCKS for key in given):
            problems.append(Problem("config", f"must set exactly one of {', '.join(BLOCKS)}, not "
                                              f"{' and '.join(blocks) if blocks else 'none'}"))
        return None
    [block] = blocks
    where, fields, kind = f"config.{block}", config[block], BLOCKS[block]
    if not isinstance(fields, dict):
        problems.append(Problem(where, "must be an object"))
        return None
    known = READABLE_FIELDS.get(kind, ()) + SECRET_FIELDS.get(kind, ())
    for name, value in fields.items():
        base = name.removesuffix("_set")
        if name != base and (base in known or base in APP_FIELDS.get(block, ())):
            if not isinstance(value, bool):  # output-only: a destination read and sent back carries them
                problems.append(Problem(f"{where}.{name}", "must be true or false (it is ignored)"))
        elif name in APP_FIELDS.get(block, ()):
            if value is not None:
                problems.append(Problem(f"{where}.{name}", WEBHOOKS_ONLY))
        elif name not in known:
            problems.append(Problem(f"{where}.{name}", f"is not a field here; the fields are {', '.join(known)}"))
    same = current is not None and current.destination_type == kind
    readable = dict(current.config) if same else {}
    secrets = dict(current.secrets) if same else {}
    dropped = ()
    if same and isinstance(fields.get("url"), str) and fields["url"] != secrets.get("url"):
        dropped = [name for name in BOUND_TO_URL.get(kind, ()) if secrets.pop(name, None) is not None]
    for name in known:
        value = fields.get(name)
        if value is None:
            continue
        found = _field_problems(kind, name, value, f"{where}.{name}")
        problems.extend(found)
        target = secrets if name in SECRET_FIELDS.get(kind, ()) else readable
        if found:
            continue
        if value == "" and name in OPTIONAL_FIELDS:
            target.pop(name, None)  # "" takes HTTP Basic authentication away
        else:
            target[name] = value
    needed = REQUIRED_FIELD[kind]
    if needed not in {**readable, **secrets} and not any(p.path.startswith(f"{where}.{needed}") for p in problems):
        problems.append(Problem(f"{where}.{needed}", "is required" + (
            f" when a destination becomes {kind}" if current is not None and not same else "")))
    if kind == "WEBHOOK" and ("username" in secrets) != ("password" in secrets):
        missing = "password" if "username" in secrets else "username"
        problems.append(Problem(f"{where}.{missing}", "username and password go together (HTTP Basic authentication)"
                                + ("; a new URL needs both given again" if missing in dropped else "")))
    return Checked(kind, readable, secrets) if len(problems) == before else None


def _field_problems(kind, name, value, where):
    """The problems of one given field."""
    if name == "addresses":
        if not isinstance(value, list) or not value:
            return [Problem(where, f"must be a list of 1 to {MAX_ADDRESSES} email addresses")]
        if len(value) > MAX_ADDRESSES:
            return [Problem(where, f"must have at most {MAX_ADDRESSES} addresses, not {len(value)}")]
        return [Problem(f"{where}[{i}]", f"{address!r} is not a valid email address" if not is_email_address(address)
                        else f"{address} is listed twice")
                for i, address in enumerate(value) if not is_email_address(address) or address in value[:i]]
    if not isinstance(value, str):
        return [Problem(where, "must be a string")]
    if name == "url":
        problem = url_problem(value)
    elif name in OPTIONAL_FIELDS:
        problem = f"must be at most {MAX_SECRET} characters long" if len(value) > MAX_SECRET else None
    else:  # an integration key
        problem = (f"must be 1 to {MAX_SECRET} characters without surrounding spaces"
                   if not value.strip() or value != value.strip() or len(value) > MAX_SECRET else None)
    return [Problem(where, problem)] if problem else []


def url_problem(url):
    """Why `url` cannot be posted to, in words that never repeat it (it is a secret), or None."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters long"
    if any(c.isspace() for c in url):
        return "must be an http or https URL without spaces"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return "must be an http or https URL with a host"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL with a host"
    return None


def as_checked(destination):
    """A stored destination in the form checked_destination compares changes against."""
    return Checked(destination.destination_type, dict(destination.config), destination.secrets)


def find(destination_id):
    """The destination with this id, or None."""
    if not isinstance(destination_id, str) or not ID.fullmatch(destination_id):
        return None
    return Destination.objects.filter(id=destination_id).first()


# --- what the pages show -----------------------------------------------------------------


def target_hint(destination):
    """Where a destination sends, without its secrets: the addresses, or a URL's scheme and host."""
    if destination.destination_type == "EMAIL":
        return ", ".join(destination.config.get("addresses") or [])
    if destination.destination_type == "PAGERDUTY":
        return "PagerDuty Events API v2 (integration key set)"
    url = destination.secrets.get("url", "")
    try:
        parts = urlsplit(url)
        hint = f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "(no URL)"
    except ValueError:
        hint = "(no URL)"
    return hint + (" with HTTP Basic authentication" if destination.secrets.get("username") else "")


def jobs_naming(destination_ids_wanted=None):
    """{destination id: [Job]} of the jobs whose current settings name it (deleted jobs and one-time
    runs' hidden jobs are left out)."""
    naming = {}
    jobs = (Job.objects.filter(kind=Job.Kind.JOB, deleted_at__isnull=True, current_version__isnull=False)
            .select_related("current_version").order_by("id"))
    for job in jobs.iterator(chunk_size=500):
        for destination in sorted({i for _, i in destination_ids(job.settings)}):
            if destination_ids_wanted is None or destination in destination_ids_wanted:
                naming.setdefault(destination, []).append(job)
    return naming


# --- writing them ------------------------------------------------------------------------


def create_destination(display_name, config, user=None):
    """A new destination from API-shaped input; SettingsInvalid names what is wrong."""
    display_name, result = checked_destination(display_name, config)
    destination = Destination(display_name=display_name, destination_type=result.destination_type,
                              config=result.config, created_by=user if user and user.is_authenticated else None)
    destination.secrets = result.secrets
    destination.save()
    return destination


@transaction.atomic
def update_destination(destination, display_name=None, config=None):
    """Change a destination (see checked_destination for what is kept); returns it, or None if it
    was deleted meanwhile."""
    new_name, result = checked_destination(display_name, config, current=as_checked(destination))
    fields = {"updated_at": timezone.now()}
    if display_name is not None:
        fields["display_name"] = new_name
    if config is not None:
        fields.update(destination_type=result.destination_type, config=result.config)
        destination.secrets = result.secrets
        fields["encrypted_secrets"] = destination.encrypted_secrets
    if not Destination.objects.filter(id=destination.id).update(**fields):
        return None
    for name, value in fields.items():
        setattr(destination, name, value)
    return destination


def delete_destination(destination):
    """Jobs that still name it keep doing so: their notifications to it fail saying it is gone
    (notifications/senders.py), as Databricks allows the deletion too. True if it was there."""
    deleted, _ = Destination.objects.filter(id=destination.id).delete()
    return bool(deleted)


# --- the save-time check of jobs ---------------------------------------------------------


def unknown_destinations(settings):
    """A Problem per webhook_notifications id that names no destination."""
    named = destination_ids(settings)
    if not named:
        return []
    existing = set(Destination.objects.filter(id__in={i for _, i in named}).values_list("id", flat=True))
    return [Problem(path, f"there is no notification destination with id {destination!r}")
            for path, destination in named if destination not in existing]
