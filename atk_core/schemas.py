"""JSON schemas of structured answers: why a value does not fit one, and a value that does."""

from __future__ import annotations

_validators: dict[int, tuple] = {}


def _validator(schema):
    # Checked on every structured answer: build each schema's validator once. Steps
    # pass the same schema object every time; the entry keeps it alive, so its id is safe.
    cached = _validators.get(id(schema))
    if cached is None or cached[0] is not schema:
        import jsonschema

        cached = (schema, jsonschema.validators.validator_for(schema)(schema))
        if len(_validators) > 256:
            _validators.clear()
        _validators[id(schema)] = cached
    return cached[1]


def schema_problem(value, schema) -> str | None:
    """Why ``value`` does not fit ``schema``, or None when it does."""
    errors = sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(p) for p in error.path) or "the top level"
    return f"at {where}: {error.message}"


def value_for_schema(schema: dict, _depth: int = 0, *, text=None, _path: str = ""):
    """A small value that fits a JSON schema: what a stand-in model answers (the scripted
    backend's default, an echo backend's structured answer, a dry run's placeholder).
    ``text(path)``, if given, makes each string (``path`` names the field, as ``.a[0].b``),
    padded or cut to the schema's length limits."""
    if not isinstance(schema, dict) or _depth > 20:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return value_for_schema(schema[key][0], _depth + 1, text=text, _path=_path)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        return {name: value_for_schema(sub, _depth + 1, text=text, _path=f"{_path}.{name}")
                for name, sub in properties.items()}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        if "maxItems" in schema:
            count = min(count, schema["maxItems"])
        return [value_for_schema(schema.get("items", {}), _depth + 1, text=text, _path=f"{_path}[{i}]")
                for i in range(count)]
    if kind == "string" and text is not None:
        value = text(_path)
        value += " x" * max(0, (schema.get("minLength", 0) - len(value) + 1) // 2)
        return value[:schema["maxLength"]] if "maxLength" in schema else value
    if kind == "string":
        length = max(schema.get("minLength", 0), 8)
        return ("scripted text " * 4)[:length].strip() or "scripted"
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "scripted"
