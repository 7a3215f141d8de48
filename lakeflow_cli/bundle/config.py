"""Reading a bundle: ``databricks.yml`` and its includes, then the selected target merged in.

What the Databricks CLI documents: the root file is found in the current directory or a parent
(or ``DATABRICKS_BUNDLE_ROOT``); ``include`` globs are relative to the root; a resource key may be
defined once; the target is ``-t``, else the one marked ``default: true``, else the only one; with
no ``targets`` at all the target is named ``default``.
"""

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from lakeflow_cli.bundle.located import Mapping, copy, load_yaml, where
from lakeflow_cli.bundle.merge import fold_keyed_arrays, merge
from lakeflow_cli.bundle.problems import BundleError, Location, Problem

ROOT_FILE_NAMES = ("databricks.yml", "databricks.yaml", "bundle.yml", "bundle.yaml")
TOP_LEVEL_KEYS = {"bundle", "include", "variables", "workspace", "artifacts", "resources", "sync", "permissions",
                  "targets", "environments", "run_as", "presets", "experimental", "python", "scripts"}
TARGET_KEYS = {"default", "mode", "presets", "bundle", "workspace", "artifacts", "resources", "sync", "permissions",
               "variables", "run_as", "git", "cluster_id", "compute_id"}
# What a target may override, merged over the top level (mode and default are the target's own).
TARGET_OVERRIDES = ("bundle", "workspace", "artifacts", "resources", "sync", "permissions", "run_as", "presets")
RESOURCE_TYPES = ("jobs", "sql_warehouses")


@dataclass
class LoadedBundle:
    root: Path
    config: Mapping  # the merged configuration of the selected target
    target: str
    mode: str | None
    warnings: list = field(default_factory=list)

    @property
    def name(self):
        return self.config["bundle"]["name"]


def find_root(start=None):
    """The bundle root: DATABRICKS_BUNDLE_ROOT, else the nearest directory with a databricks.yml."""
    configured = os.environ.get("DATABRICKS_BUNDLE_ROOT")
    if configured:
        return Path(configured).resolve()
    here = Path(start or os.getcwd()).resolve()
    for directory in (here, *here.parents):
        if any((directory / name).is_file() for name in ROOT_FILE_NAMES):
            return directory
    raise BundleError([Problem(f"unable to locate bundle root: databricks.yml not found in {here} or its parents")])


def root_file(root):
    for name in ROOT_FILE_NAMES:
        if (root / name).is_file():
            return root / name
    raise BundleError([Problem(f"{root}: no databricks.yml")])


def load(root, target=None):
    """The bundle at ``root`` with ``target`` merged in (variables are not resolved yet)."""
    root = Path(root)
    path = root_file(root)
    config = _read(path, root)
    problems, warnings = [], []
    _check_keys(config, TOP_LEVEL_KEYS, "", warnings)
    for included in _included_files(config, root, problems, warnings):
        part = _read(included, root)
        if "include" in part:
            problems.append(Problem("include is only allowed in the root databricks.yml", part.where("include"),
                                    "include"))
        _check_keys(part, TOP_LEVEL_KEYS, "", warnings)
        problems += _duplicate_resources(config, part)
        config = merge(config, part)
    if problems:
        raise BundleError(problems)
    if "environments" in config and "targets" not in config:  # the CLI's old name for targets
        config.set("targets", config.pop("environments"), config.where("environments"))
    bundle = config.get("bundle")
    if not isinstance(bundle, dict) or not bundle.get("name"):
        raise BundleError([Problem("bundle.name is required", config.where("bundle"), "bundle.name")])
    selected = _select_target(config, target)
    target_config = (config.get("targets") or {}).get(selected) or Mapping()
    if not isinstance(target_config, dict):
        raise BundleError([Problem(f"target {selected} must be a mapping", where(config["targets"], selected),
                                   f"targets.{selected}")])
    _check_keys(target_config, TARGET_KEYS, f"targets.{selected}.", warnings)
    merged = _merge_target(config, target_config)
    mode = target_config.get("mode")
    if mode not in (None, "development", "production"):
        raise BundleError([Problem(f"mode must be development or production, not {mode!r}",
                                   target_config.where("mode"), f"targets.{selected}.mode")])
    merged["bundle"]["target"] = selected
    for job in ((merged.get("resources") or {}).get("jobs") or {}).values():
        if isinstance(job, dict):
            fold_keyed_arrays(job)
    return LoadedBundle(root=root, config=merged, target=selected, mode=mode, warnings=warnings)


def _read(path, root):
    try:
        display = str(Path(path).relative_to(root))
    except ValueError:
        display = str(path)
    config = load_yaml(path, display)
    if not isinstance(config, dict):
        raise BundleError([Problem("a bundle file must be a mapping", Location(display, 1))])
    return config


def _check_keys(config, allowed, prefix, warnings):
    for key in config:
        if key not in allowed:
            warnings.append(Problem(f"unknown field: {key}", where(config, key), f"{prefix}{key}", "warning"))


def _included_files(config, root, problems, warnings):
    includes = config.get("include") or []
    if not isinstance(includes, list):
        problems.append(Problem("include must be a list of paths or globs", config.where("include"), "include"))
        return []
    files, seen = [], set()
    for index, pattern in enumerate(includes):
        at = where(includes, index)
        if not isinstance(pattern, str) or not pattern:
            problems.append(Problem("an include entry must be a path or glob", at, f"include[{index}]"))
            continue
        matches = sorted(glob.glob(str(root / pattern), recursive=True))
        matches = [m for m in matches if Path(m).is_file() and Path(m).suffix in (".yml", ".yaml")]
        if not matches:
            if glob.has_magic(pattern):
                warnings.append(Problem(f"include {pattern} matches no file", at, f"include[{index}]", "warning"))
            else:
                problems.append(Problem(f"include {pattern}: file not found", at, f"include[{index}]"))
        for match in matches:
            resolved = Path(match).resolve()
            if not resolved.is_relative_to(root.resolve()):
                problems.append(Problem(f"include {pattern} leaves the bundle root", at, f"include[{index}]"))
            elif resolved not in seen:
                seen.add(resolved)
                files.append(resolved)
    return files


def _duplicate_resources(config, part):
    problems = []
    mine, theirs = config.get("resources") or {}, part.get("resources") or {}
    for kind, items in theirs.items():
        existing = mine.get(kind) or {}
        if not isinstance(items, dict):
            continue
        for key in items:
            if key in existing:
                problems.append(Problem(
                    f"multiple resources named {key} ({kind} at {where(existing, key)}, {kind} at {where(items, key)})",
                    where(items, key), f"resources.{kind}.{key}"))
    return problems


def _select_target(config, target):
    targets = config.get("targets") or {}
    if not isinstance(targets, dict):
        raise BundleError([Problem("targets must be a mapping", config.where("targets"), "targets")])
    if target is not None:
        if target not in targets and not (target == "default" and not targets):
            names = ", ".join(sorted(targets)) or "(none)"
            raise BundleError([Problem(f"{target}: no such target. Available targets: {names}",
                                       config.where("targets") if targets else None, "targets")])
        return target
    if not targets:
        return "default"
    defaults = [name for name, body in targets.items() if isinstance(body, dict) and body.get("default") is True]
    if len(defaults) > 1:
        raise BundleError([Problem(f"multiple targets are marked default: {', '.join(defaults)}",
                                   config.where("targets"), "targets")])
    if defaults:
        return defaults[0]
    if len(targets) == 1:
        return next(iter(targets))
    raise BundleError([Problem("please specify target (-t): no target is marked default. Available targets: "
                               + ", ".join(sorted(targets)), config.where("targets"), "targets")])


def _merge_target(config, target_config):
    merged = copy(config)
    merged.pop("targets", None)
    merged.pop("include", None)
    for key in TARGET_OVERRIDES:
        if key in target_config:
            if key in ("run_as",):
                merged.set(key, copy(target_config[key]), target_config.where(key))
            else:
                merged.set(key, merge(merged.get(key, Mapping()), target_config[key]), target_config.where(key))
    if "git" in target_config:
        bundle = merged["bundle"]
        bundle.set("git", merge(bundle.get("git", Mapping()), target_config["git"]), target_config.where("git"))
    if "variables" in target_config:
        merged.set("target_variables", copy(target_config["variables"]), target_config.where("variables"))
    return merged
