"""atk: turn raw documents into LLM training datasets with pipelines that are plugins.

What this module exports is the public API; everything else may change.
Heavier parts (models, steps, the runner) are imported on first use, so that
``import atk_core`` and ``atk --help`` stay fast.
"""

from .errors import AtkError, ConfigError, PipelineError, PluginError
from .hookspecs import hookimpl, hookspec
from .pipeline import Pipeline
from .progress import ProgressEvent, set_progress

__version__ = "0.1.0"

_LAZY = {
    "current_run": ("atk_core.runner", "current_run"),
    "RunContext": ("atk_core.runner", "RunContext"),
    "Backend": ("atk_core.models", "Backend"),
    "Request": ("atk_core.models", "Request"),
    "Response": ("atk_core.models", "Response"),
    "Usage": ("atk_core.models", "Usage"),
    "RateLimited": ("atk_core.models", "RateLimited"),
    "TransientError": ("atk_core.models", "TransientError"),
    "RequestError": ("atk_core.models", "RequestError"),
    "FatalError": ("atk_core.models", "FatalError"),
    "Model": ("atk_core.models", "Model"),
    "ModelSpec": ("atk_core.models", "ModelSpec"),
    "PipelineStep": ("atk_core.steps", "PipelineStep"),
    "VoteStep": ("atk_core.steps", "VoteStep"),
    "StepResult": ("atk_core.steps", "StepResult"),
    "StepEnvironment": ("atk_core.steps", "StepEnvironment"),
    "derive_seed": ("atk_core.steps", "derive_seed"),
    "stream": ("atk_core.steps", "stream"),
    "PromptLibrary": ("atk_core.prompts", "PromptLibrary"),
    "Store": ("atk_core.store", "Store"),
    "RunRecord": ("atk_core.manifest", "RunRecord"),
}

__all__ = [
    "AtkError", "ConfigError", "PipelineError", "PluginError", "Pipeline", "ProgressEvent",
    "hookimpl", "hookspec", "set_progress", "__version__", *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'atk_core' has no attribute {name!r}")
