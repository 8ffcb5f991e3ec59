"""The plugin contract: every way a plugin can extend atk.

Each hook receives a ``register`` callback (or the CLI group), so the core can
pass new optional keyword arguments later without breaking existing plugins.
A plugin is a module named by an entry point in the ``atk`` group; it holds
functions with these names, marked with ``atk_core.hookimpl``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("atk")
hookimpl = pluggy.HookimplMarker("atk")


@hookspec
def atk_register_pipelines(register):
    """Register pipelines: ``register(Pipeline(name=..., function=..., description=...))``."""


@hookspec
def atk_register_model_backends(register):
    """Register model backends: ``register(name, backend_class)``."""


@hookspec
def atk_register_progress_reporters(register):
    """Register progress reporters: ``register(name, reporter_class)``."""


@hookspec
def atk_register_executors(register):
    """Register executors, which run a step's samples: ``register(name, executor_class)``."""


@hookspec
def atk_register_readers(register):
    """Register document readers, which turn a file's bytes into text: ``register(name, reader_class)``."""


@hookspec
def atk_register_commands(cli):
    """Add click commands to the ``atk`` command group ``cli`` (loaded only when needed)."""
