"""The errors atk reports to users as one line, and the exit status each maps to."""


class AtkError(Exception):
    """An error with a message fit to show a user as one line."""

    exit_code = 1


class ConfigError(AtkError):
    """The config, the command line or the pipeline's arguments are wrong: exit status 2."""

    exit_code = 2


class PluginError(AtkError):
    """A plugin is missing, broken or clashes with another: exit status 2."""

    exit_code = 2


class PipelineError(AtkError):
    """A pipeline-level failure (unreadable input, backend unreachable): exit status 1."""

    exit_code = 1


def one_line(exc: BaseException) -> str:
    """An exception as one line: an ``AtkError``'s first line is meant for users as it
    is; anything else is a surprise, so its type is named."""
    lines = str(exc).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if isinstance(exc, AtkError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def did_you_mean(name, choices, *, n: int = 1, cutoff: float = 0.6) -> str:
    """``did you mean 'x'?`` for the choices nearest ``name`` (ignoring case), else ``""``."""
    import difflib

    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(str(choice).lower(), str(choice))
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=n, cutoff=cutoff)
    return f"did you mean {', '.join(repr(by_lower[c]) for c in close)}?" if close else ""
