"""Model backends and the model roles a pipeline receives."""

from __future__ import annotations

from ..errors import ConfigError
from .base import (
    Backend, BackendError, FatalError, RateLimited, Request, RequestError, Response,
    TransientError, Usage,
)
from .model import Model, make_request, schema_problem
from .specs import ModelSpec, parse_spec, resolve_model_specs, with_model_overrides

__all__ = [
    "Backend", "BackendError", "FatalError", "Model", "ModelSpec", "RateLimited", "Request",
    "RequestError", "Response", "TransientError", "Usage", "build_models", "close_models",
    "make_request", "parse_spec", "resolve_model_specs", "schema_problem", "with_model_overrides",
]


def build_models(specs: dict[str, ModelSpec], registry) -> dict[str, Model]:
    """A ready ``Model`` per role; a backend that cannot start is a config error."""
    models = {}
    for role, spec in specs.items():
        cls = registry.backend(spec.backend)
        try:
            backend = cls(**spec.options)
        except Exception as exc:
            raise ConfigError(
                f"models.{role}: backend {spec.backend!r} could not start: {exc}"
            ) from None
        models[role] = Model(spec, backend)
    return models


async def close_models(models: dict[str, Model]) -> None:
    for model in models.values():
        try:
            await model.aclose()
        except Exception:  # closing must not hide the run's own outcome
            pass
