"""The shape each built-in form asks for, checked without a model.

A restatement "as JSON" that is not JSON, or "as a list" that is one
sentence, teaches the wrong thing. Forms not named here (those a user adds)
are not checked for shape; every form is checked for content by the gates.
"""

from __future__ import annotations

import json
import re

from atk_core import Problem


def _json(text: str) -> str | None:
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        value = json.loads(body)
    except ValueError:
        return "it is not valid JSON; write one JSON object"
    return None if isinstance(value, dict) and value else "write one JSON object with the facts in it"


def _xml(text: str) -> str | None:
    import xml.etree.ElementTree as ElementTree

    body = re.sub(r"^```(?:xml)?\s*|\s*```$", "", text.strip())
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return "it is not well-formed XML; write one root element with one element per fact"
    return None if len(root) >= 2 else "write one root element holding one element per fact"


def _list(text: str) -> str | None:
    items = [line for line in text.splitlines() if re.match(r"\s*(?:[-*•]|\d+[.)])\s+\S", line)]
    return None if len(items) >= 2 else "write a list: one fact per line, each starting with '- '"


def _qa(text: str) -> str | None:
    return None if text.count("?") >= 2 else "write at least two questions, each followed by its answer"


CHECKS = {"json": _json, "xml": _xml, "list": _list, "qa": _qa}


def form_problem(form: str, text: str) -> Problem | None:
    """Whether ``text`` has the shape its built-in ``form`` asks for."""
    check = CHECKS.get(form)
    message = check(text) if check else None
    return Problem("not in its form", f"it is not in the {form} form: {message}") if message else None
