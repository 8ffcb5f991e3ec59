"""From the config's ``models:`` section (and ``--model`` flags) to ready models."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Annotated

from ..toolkit.constraints import Above, AtLeast, enforce_constraint
from ..errors import ConfigError

_PRICE = Annotated[float, AtLeast(0, unit="dollars per million tokens")]


@dataclass
class ModelSpec:
    """One model role: which backend, its options, and the core's policy for it.

    The policy's annotations are what a config may set (checked as any
    pipeline field is, see ``atk_core.toolkit.constraints``).
    """

    role: str
    backend: str
    options: dict = field(default_factory=dict)
    concurrency: Annotated[int, AtLeast(1)] = 8
    rpm: Annotated[float, Above(0, unit="requests per minute")] | None = None
    timeout: Annotated[float, Above(0, unit="seconds")] = 300.0
    max_retries: Annotated[int, AtLeast(0)] = 5
    retry_base_delay: Annotated[float, AtLeast(0, unit="seconds")] = 1.0
    price_in: _PRICE | None = None  # per million prompt tokens
    price_out: _PRICE | None = None  # per million completion tokens
    # per million prompt tokens read from / written to a provider's prompt cache (price_in if unset)
    price_cache_read: _PRICE | None = None
    price_cache_write: _PRICE | None = None
    # The provider's Batch API (backends that have one: openai, anthropic): requests are collected
    # into batches of at most batch_size, sent once none has come for batch_wait seconds,
    # and followed every batch_poll seconds.
    batch: bool = False
    batch_size: Annotated[int, AtLeast(1)] = 10_000
    batch_wait: Annotated[float, AtLeast(0, unit="seconds")] = 2.0
    batch_poll: Annotated[float, Above(0, unit="seconds")] = 30.0


POLICY_KEYS = tuple(f.name for f in fields(ModelSpec) if f.name not in ("role", "backend", "options"))
_POLICY_TYPES = typing.get_type_hints(ModelSpec, include_extras=True)


def parse_spec(role: str, value, source: str = "config") -> ModelSpec:
    """``{backend: openai, model: x, concurrency: 4}`` or ``"openai:x"`` as a ModelSpec."""
    if isinstance(value, str):
        backend, _, model = value.partition(":")
        value = {"backend": backend, **({"model": model} if model else {})}
    settings = dict(value)
    backend = settings.pop("backend", None)
    if not backend or not isinstance(backend, str):
        raise ConfigError(f"{source}: models.{role} has no 'backend:' (see `atk list backends`)")
    policy = {}
    for key in POLICY_KEYS:
        if key not in settings:
            continue
        value = enforce_constraint(f"{source}: models.{role}.{key}", settings.pop(key), _POLICY_TYPES[key])
        if value is not None:
            policy[key] = value
    if policy.get("batch") and "concurrency" not in policy:  # a batch holds many requests
        policy["concurrency"] = policy.get("batch_size", ModelSpec.batch_size)
    return ModelSpec(role=role, backend=backend, options=settings, **policy)


def with_model_overrides(models: dict, overrides) -> dict:
    """The config's ``models:`` section with ``ROLE=BACKEND[:MODEL]`` overrides applied,
    as a config would say it (so the saved config says what ran).

    Switching a role to another backend drops the old backend's options (a
    base_url or key meant for one server must not reach another) but keeps
    the core's policy (concurrency, timeout...).
    """
    result = {role: as_mapping(settings) for role, settings in models.items()}
    for override in overrides:
        role, sep, target = str(override).partition("=")
        role = role.strip()
        if not sep or not role or not target.strip():
            raise ConfigError(
                f"--model {override!r}: expected ROLE=BACKEND or ROLE=BACKEND:MODEL,"
                " e.g. --model large=llamacpp"
            )
        backend, _, model = target.strip().partition(":")
        old = result.get(role) or {}
        policy = {k: old[k] for k in POLICY_KEYS if k in old}
        options = {k: v for k, v in old.items() if k not in POLICY_KEYS and k != "backend"}
        if old.get("backend") != backend:
            options = {}
        if model:
            options["model"] = model
        result[role] = {"backend": backend, **options, **policy}
    return result


def as_mapping(settings) -> dict:
    """A role's settings as a mapping, also when written in the short ``backend:model`` form."""
    if isinstance(settings, str):  # the short "backend:model" form
        backend, _, model = settings.partition(":")
        return {"backend": backend, **({"model": model} if model else {})}
    return dict(settings)


def resolve_model_specs(config, registry=None, *, vet_options: bool = True) -> dict[str, ModelSpec]:
    """The config's model roles as ModelSpecs; with a registry, each backend is looked up
    and (``vet_options``) vets its options."""
    from .base import has_batch_api

    specs = {role: parse_spec(role, value, config.source) for role, value in config.models.items()}
    if registry is not None:
        for spec in specs.values():
            try:
                cls = registry.backend(spec.backend)
            except ConfigError as exc:
                raise ConfigError(f"{config.source}: models.{spec.role}: {exc}") from None
            if spec.batch and not has_batch_api(cls):
                raise ConfigError(f"{config.source}: models.{spec.role}: batch: true needs a backend"
                                  f" with a Batch API (openai); {spec.backend!r} has none")
            if vet_options:
                _vet_options(cls, spec, config)
    return specs


def _vet_options(cls, spec: ModelSpec, config) -> None:
    """The backend's own look at its options (``Backend.vet_options``), nothing started.

    A backend class that is not a ``Backend`` subclass has no such check: it
    checks its options when it is made.
    """
    from ..toolkit.constraints import run_vetter, vetter_of

    vetter = vetter_of(cls)
    if vetter is not None:
        run_vetter(vetter, spec.options,
                  refused=f"{config.source}: models.{spec.role}: backend {spec.backend!r}",
                  broken=f"backend {spec.backend!r}: its vet_options failed",
                  secrets=config.secret_values())
