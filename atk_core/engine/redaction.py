"""Secrets: which config keys hold them, and keeping them out of everything atk shows or saves.

A value is secret when its key is named like one (``api_key``, ``hf_token``,
``client_secret``...) or when it came from the environment (``${VAR}``).
Secrets never appear in a printed line, a log, a saved config, a manifest or
a process's command line: configs are shown redacted, messages are scrubbed
of secret strings, and ``atk serve`` hands literal secrets to a run through
its environment instead of its arguments.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

_SECRET_WORDS = {"token", "secret", "password", "passwd", "apikey", "credential", "credentials",
                 "authorization", "cookie"}


def is_secret_key(key) -> bool:
    """Whether a key names a secret: ``api_key``, ``hf_token``, ``client_secret``...

    Words are matched whole, so ``max_tokens`` is not a secret but ``token`` is.
    """
    if not isinstance(key, str):
        return False
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    if "api_key" in snake or "apikey" in snake:
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", snake))


def redact(node, templates: dict, path: tuple = ()):
    """A config tree with every secret hidden.

    ``templates`` maps the paths of values that came from the environment to
    the ``${VAR}`` text they were written as, which is shown instead; other
    values under secret keys become ``<redacted>``.
    """
    if path in templates:
        return templates[path]
    if isinstance(node, dict):
        return {
            k: (_hide(v) if is_secret_key(k) and path + (k,) not in templates
                else redact(v, templates, path + (k,)))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [redact(v, templates, path + (i,)) for i, v in enumerate(node)]
    if isinstance(node, str):
        # Keep the saved config re-runnable: a literal "${" must not become a reference.
        return re.sub(r"\$(?=[{$])", "$$", node)
    if node is None or isinstance(node, (bool, int, float)):
        return node
    # Objects given in-process (a function for the scripted backend) are named, not dumped.
    name = getattr(node, "__qualname__", None) or type(node).__qualname__
    return f"<python object {getattr(node, '__module__', '?')}.{name}>"


def _hide(value):
    if value is None or value == "":
        return value
    if isinstance(value, dict):
        return {k: _hide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return REDACTED


def secret_strings(tree, also=()) -> list[str]:
    """The secret strings of a config tree (plus ``also``), longest first, to scrub with."""
    found = set(also)
    _collect(tree, found)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def _collect(node, found, secret=False):
    if isinstance(node, dict):
        for k, v in node.items():
            _collect(v, found, secret or is_secret_key(k))
    elif isinstance(node, list):
        for v in node:
            _collect(v, found, secret)
    elif secret and isinstance(node, str) and node:
        found.add(node)


# A message may show a long value cut short ("not 'sk-proj-AbCd...'"): this much of a
# secret's start is enough to hide what follows of it.
_SECRET_PREFIX = 10


def scrub(text: str, secrets) -> str:
    """Replace every secret value in ``text`` with a redaction mark, also where only its
    start is shown (a message that cuts a long value short)."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
        if len(secret) <= _SECRET_PREFIX:
            continue
        start = text.find(secret[:_SECRET_PREFIX])
        while start != -1:
            end = start + _SECRET_PREFIX
            while end < len(text) and end - start < len(secret) and text[end] == secret[end - start]:
                end += 1
            text = text[:start] + REDACTED + text[end:]
            start = text.find(secret[:_SECRET_PREFIX], start + len(REDACTED))
    return text


def move_to_environment(node, env: dict, prefix: str, secret: bool = False):
    """``node`` with each literal secret replaced by a ``${NAME}`` reference, and
    ``env[NAME]`` holding the value: so that a command line never carries one."""
    if isinstance(node, dict):
        return {k: move_to_environment(v, env, prefix, secret or is_secret_key(k))
                for k, v in node.items()}
    if isinstance(node, list):
        return [move_to_environment(v, env, prefix, secret) for v in node]
    if secret and isinstance(node, str) and node and "${" not in node.replace("$$", ""):
        name = f"{prefix}{len(env) + 1}"
        env[name] = node.replace("$$", "$")
        return "${" + name + "}"
    return node
