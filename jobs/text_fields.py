"""Form fields that edit lists and maps as text a person can type: one item per line,
``key=value`` pairs, a JSON object, dependencies with their outcome."""

import json

from django import forms
from django.core.exceptions import ValidationError

def _fits_a_line(text):
    return isinstance(text, str) and text != "" and text == text.strip() and "\n" not in text


class LinesField(forms.CharField):
    """A list of strings, one per line. A JSON array is accepted too, and shown for lists
    whose items would not survive as lines (empty, multi-line or padded strings)."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        if not isinstance(value, list):
            return value
        if all(_fits_a_line(item) for item in value) and not (value and value[0].startswith("[")):
            return "\n".join(value)
        return json.dumps(value, ensure_ascii=False)

    def to_python(self, value):
        text = super().to_python(value)
        if text.startswith("["):
            return _json(text, list, "a JSON array")
        return [line.strip() for line in text.splitlines() if line.strip()]


class PairsField(forms.CharField):
    """A string map written as name=value lines; a JSON object is accepted too."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        if isinstance(value, dict):
            value = list(value.items())
        if not isinstance(value, list):
            return value
        if all(_fits_a_line(name) and "=" not in name and (text == "" or _fits_a_line(text))
               for name, text in value) and not (value and value[0][0].startswith("{")):
            return "\n".join(f"{name}={text}" for name, text in value)
        return json.dumps(dict(value), ensure_ascii=False)

    def to_python(self, value):
        pairs = self.pairs(super().to_python(value))
        seen = set()
        for name, _ in pairs:
            if name in seen:
                raise ValidationError(f"'{name}' is given more than once")
            seen.add(name)
        return dict(pairs)

    @staticmethod
    def pairs(text):
        if text.startswith("{"):
            return list(_json(text, dict, "a JSON object").items())
        pairs = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise ValidationError(f"line {number}: write name=value (got '{line.strip()}')")
            pairs.append((name.strip(), value.strip()))
        return pairs


class JobParametersField(PairsField):
    """Job parameters as name=default lines; duplicates are left to the validator, which names them."""

    def prepare_value(self, value):
        if isinstance(value, list) and all(isinstance(p, dict) for p in value):
            value = [(p.get("name"), p.get("default")) for p in value]
        return super().prepare_value(value)

    def to_python(self, value):
        return [{"name": name, "default": default}
                for name, default in self.pairs(forms.CharField.to_python(self, value))]


class JsonObjectField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 6, "class": "font-monospace", "spellcheck": "false"})

    def prepare_value(self, value):
        return json.dumps(value, indent=2, ensure_ascii=False) if isinstance(value, dict) else value

    def to_python(self, value):
        text = super().to_python(value)
        return _json(text, dict, "a JSON object") if text else None


class DependsOnField(forms.CharField):
    """depends_on as `a, b, check:true`: task keys, with the outcome after a condition task's key."""

    def prepare_value(self, value):
        if not isinstance(value, list):
            return value
        return ", ".join(f"{d.get('task_key')}:{d['outcome']}" if "outcome" in d else str(d.get("task_key"))
                         for d in value if isinstance(d, dict))

    def to_python(self, value):
        entries = []
        for item in filter(None, (part.strip() for part in super().to_python(value).split(","))):
            key, sep, outcome = item.partition(":")
            entries.append({"task_key": key.strip(), **({"outcome": outcome.strip()} if sep else {})})
        return entries


def _json(text, kind, what):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(value, kind):
        raise ValidationError(f"must be {what}")
    return value
