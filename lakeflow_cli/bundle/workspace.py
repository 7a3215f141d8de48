"""The ``workspace`` section's defaults, set before references are resolved so that
``${workspace.file_path}`` and friends resolve like any other path."""

import re

from lakeflow_cli.bundle.located import Mapping

DEFAULT_ROOT = "~/.bundle/${bundle.name}/${bundle.target}"
DERIVED = {"file_path": "files", "artifact_path": "artifacts", "state_path": "state", "resource_path": "resources"}


def short_name(user_name):
    """The CLI's short name: the part before @, anything but letters, digits and _ as _."""
    return re.sub(r"[^A-Za-z0-9_]", "_", user_name.split("@")[0])


def set_defaults(config, user):
    """``user``: {"userName": ..., "displayName": ...} of the deploying identity."""
    workspace = config.get("workspace")
    if not isinstance(workspace, dict):
        workspace = Mapping(location=config.where("workspace"))
        config.set("workspace", workspace)
    workspace["current_user"] = {**user, "short_name": short_name(user["userName"])}
    explicit_root = "root_path" in workspace
    root = workspace.get("root_path") or DEFAULT_ROOT
    workspace.set("root_path", with_workspace_prefix(root, user["userName"]), workspace.where("root_path"))
    for name, leaf in DERIVED.items():
        if name in workspace:
            workspace.set(name, with_workspace_prefix(workspace[name], user["userName"]), workspace.where(name))
        else:
            workspace[name] = "${workspace.root_path}/" + leaf
    return explicit_root


def with_workspace_prefix(path, user_name):
    """``~`` is the user's home; ``/Users/...`` and ``/Shared/...`` live under ``/Workspace``."""
    if not isinstance(path, str):
        return path
    if path == "~" or path.startswith("~/"):
        path = f"/Workspace/Users/{user_name}" + path[1:]
    if path.startswith(("/Users/", "/Shared/")) or path in ("/Users", "/Shared"):
        path = "/Workspace" + path
    return path
