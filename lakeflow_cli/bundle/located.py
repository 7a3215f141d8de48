"""YAML read with positions: mappings and sequences that remember where each entry came from.

``Mapping`` and ``Sequence`` are a dict and a list (so the rest of the code, ``json`` and the SDK
treat them as such) that also carry the Location of each key or item. Merging and copying keep
the locations, so a problem found after targets are merged still names the file and line.
"""

import yaml

from lakeflow_cli.bundle.problems import BundleError, Location, Problem


class Mapping(dict):
    __slots__ = ("locations", "location")

    def __init__(self, *args, location=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.locations = {}  # key -> Location of the key
        self.location = location  # where the mapping itself starts

    def set(self, key, value, location=None):
        self[key] = value
        if location is not None:
            self.locations[key] = location

    def where(self, key):
        return self.locations.get(key, self.location)


class Sequence(list):
    __slots__ = ("locations", "location")

    def __init__(self, *args, location=None):
        super().__init__(*args)
        self.locations = [location] * len(self)
        self.location = location

    def add(self, value, location=None):
        self.append(value)
        self.locations.append(location or self.location)

    def where(self, index):
        if 0 <= index < len(self.locations) and self.locations[index] is not None:
            return self.locations[index]
        return self.location


def where(container, key):
    """The location of ``container[key]`` when known."""
    if isinstance(container, (Mapping, Sequence)):
        return container.where(key)
    return None


def copy(value):
    """A deep copy that keeps locations."""
    if isinstance(value, dict):
        result = Mapping(location=getattr(value, "location", None))
        for key, item in value.items():
            result.set(key, copy(item), where(value, key))
        return result
    if isinstance(value, list):
        result = Sequence(location=getattr(value, "location", None))
        for index, item in enumerate(value):
            result.add(copy(item), where(value, index))
        return result
    return value


def plain(value):
    """Plain dicts and lists (for JSON and the SDK)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _location(file, mark):
    return Location(file, mark.line + 1, mark.column + 1)


def load_yaml(path, display_name=None):
    """A YAML file as Mapping/Sequence values; a syntax error raises BundleError with its line."""
    name = display_name or str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise BundleError([Problem(f"cannot read {name}: {error.strerror}")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Mapping(location=Location(name, 1))
        return _convert(loader, node, name)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        location = _location(name, mark) if mark else Location(name, 1)
        message = " ".join(part for part in (error.context, error.problem) if part)
        raise BundleError([Problem(f"invalid YAML: {message}", location)]) from None
    finally:
        loader.dispose()


def _convert(loader, node, name):
    location = _location(name, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        result = Mapping(location=location)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            key_location = _location(name, key_node.start_mark)
            if key in result:
                raise BundleError([Problem(f"key {key!r} appears twice in one mapping", key_location)])
            result.set(key, _convert(loader, value_node, name), key_location)
        return result
    if isinstance(node, yaml.SequenceNode):
        result = Sequence(location=location)
        for item in node.value:
            result.add(_convert(loader, item, name), _location(name, item.start_mark))
        return result
    value = loader.construct_object(node, deep=True)
    if hasattr(value, "isoformat"):  # YAML dates stay text, as the CLI keeps them
        return node.value
    return value
