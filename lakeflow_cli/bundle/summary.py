"""``bundle summary``: the bundle, target, workspace paths and each resource with its id and
dashboard URL (``--output json`` gives the resolved configuration with ``id`` and ``url``)."""

from lakeflow_cli.bundle.located import plain
from lakeflow_cli.bundle.state import State


def resource_urls(server, prepared):
    state = State(server, prepared.workspace["state_path"], prepared.name, prepared.target).load()
    found = {}
    for kind in ("jobs", "sql_warehouses"):
        for key in prepared.resources(kind):
            entry = state.resources(kind).get(key)
            if entry is None:
                found[(kind, key)] = (None, None)
            elif kind == "jobs":
                found[(kind, key)] = (entry["id"], f"{server.host}/jobs/{entry['id']}/")
            else:
                found[(kind, key)] = (entry["id"], None)
    return found


def as_json(server, prepared):
    config = plain(prepared.config)
    for (kind, key), (resource_id, url) in resource_urls(server, prepared).items():
        if resource_id is not None:
            config["resources"][kind][key]["id"] = resource_id
        if url:
            config["resources"][kind][key]["url"] = url
    return config


def as_text(server, prepared):
    user = prepared.workspace["current_user"]["userName"]
    lines = [f"Name: {prepared.name}", f"Target: {prepared.target}", "Workspace:",
             f"  Host: {server.host}", f"  User: {user}", f"  Path: {prepared.workspace['root_path']}", "Resources:"]
    urls = resource_urls(server, prepared)
    for kind, title in (("jobs", "Jobs"), ("sql_warehouses", "SQL Warehouses")):
        if not prepared.resources(kind):
            continue
        lines.append(f"  {title}:")
        for key, body in prepared.resources(kind).items():
            resource_id, url = urls[(kind, key)]
            lines.append(f"    {key}:")
            lines.append(f"      Name: {body.get('name', key)}")
            lines.append(f"      URL:  {url or ('(not deployed)' if resource_id is None else resource_id)}")
    return "\n".join(lines)
