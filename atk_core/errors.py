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
