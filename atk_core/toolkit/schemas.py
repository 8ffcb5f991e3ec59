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
        value = value[:schema["maxLength"]] if "maxLength" in schema else value
        return _fitting_pattern(value, schema.get("pattern"))
    if kind == "string":
        length = max(schema.get("minLength", 0), 8)
        return _fitting_pattern(("scripted text " * 4)[:length].strip() or "scripted", schema.get("pattern"))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "scripted"


def _fitting_pattern(value: str, pattern: str | None) -> str:
    """``value``, or, when it does not match ``pattern``, a string that does, built from the
    pattern with ``value``'s characters where the pattern lets any of a class repeat ("What
    scripted text?" for ``^(What|Who) [^?]+\\?$``)."""
    import re

    if not pattern or re.search(pattern, value):
        return value
    try:
        from re import _parser as parser  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse as parser
    try:
        made = _from_parsed(parser.parse(pattern), value, parser)
    except Exception:  # a construct this does not build: the value as it is
        return value
    return made if re.search(pattern, made) else value


def _from_parsed(parsed, fill: str, parser) -> str:
    constants = parser
    out = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(arg) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_allowed(arg, "abcdefghijklmnopqrstuvwxyz ")[:1] or "a")
        elif name == "BRANCH":
            out.append(_from_parsed(arg[1][0], fill, constants))
        elif name == "SUBPATTERN":
            out.append(_from_parsed(arg[-1], fill, constants))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, item = arg
            if len(item) == 1 and str(item[0][0]) == "IN":
                letters = _allowed(item[0][1], fill) or _allowed(item[0][1], "abcdefghijklmnopqrstuvwxyz ")
                count = max(low, min(len(letters), high if high != constants.MAXREPEAT else len(letters)))
                out.append((letters * (count // max(1, len(letters)) + 1))[:count] if letters else "")
            else:
                out.append(_from_parsed(item, fill, constants) * max(low, 1 if low == 0 and high else low))
        # AT (anchors) and the rest add nothing
    return "".join(out)


def _allowed(items, candidates: str) -> str:
    """The characters of ``candidates`` that a parsed character class admits, in order."""
    negate = any(str(op) == "NEGATE" for op, _ in items)

    def inside(ch):
        for op, arg in items:
            name = str(op)
            if name == "LITERAL" and ord(ch) == arg:
                return True
            if name == "RANGE" and arg[0] <= ord(ch) <= arg[1]:
                return True
            if name == "CATEGORY" and _category(str(arg), ch):
                return True
        return False

    return "".join(ch for ch in candidates if inside(ch) != negate)


def _category(name: str, ch: str) -> bool:
    checks = {"CATEGORY_DIGIT": str.isdigit, "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
              "CATEGORY_SPACE": str.isspace, "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
              "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
              "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_")}
    return checks.get(name, lambda c: False)(ch)
