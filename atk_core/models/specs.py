"""From the config's ``models:`` section (and ``--model`` flags) to ready models."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..errors import ConfigError


@dataclass
class ModelSpec:
    """One model role: which backend, its options, and the core's policy for it."""

    role: str
    backend: str
    options: dict = field(default_factory=dict)
    concurrency: int = 8
    rpm: float | None = None
    timeout: float = 300.0
    max_retries: int = 5
    retry_base_delay: float = 1.0
    price_in: float | None = None  # per million prompt tokens
    price_out: float | None = None  # per million completion tokens


POLICY_KEYS = tuple(f.name for f in fields(ModelSpec) if f.name not in ("role", "backend", "options"))

_CHECKS = {
    "concurrency": (int, lambda v: v >= 1, "a whole number of at least 1"),
    "rpm": ((int, float), lambda v: v > 0, "a positive number of requests per minute"),
    "timeout": ((int, float), lambda v: v > 0, "a positive number of seconds"),
    "max_retries": (int, lambda v: v >= 0, "a whole number of at least 0"),
    "retry_base_delay": ((int, float), lambda v: v >= 0, "a number of seconds, 0 or more"),
    "price_in": ((int, float), lambda v: v >= 0, "a price per million tokens, 0 or more"),
    "price_out": ((int, float), lambda v: v >= 0, "a price per million tokens, 0 or more"),
}


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
        raw = settings.pop(key)
        if raw is None and key in ("rpm", "price_in", "price_out"):
            continue
        kind, ok, wanted = _CHECKS[key]
        if isinstance(raw, bool) or not isinstance(raw, kind) or not ok(raw):
            raise ConfigError(f"{source}: models.{role}.{key} must be {wanted}, not {raw!r}")
        policy[key] = raw
    return ModelSpec(role=role, backend=backend, options=settings, **policy)


def resolve_model_specs(config, overrides=(), registry=None, *,
                        check_options: bool = True) -> dict[str, ModelSpec]:
    """The config's model roles with ``ROLE=BACKEND[:MODEL]`` overrides applied.

    Switching a role to another backend drops the old backend's options (a
    base_url or key meant for one server must not reach another) but keeps
    the core's policy (concurrency, timeout...).
    """
    specs = {role: parse_spec(role, value, config.source) for role, value in config.models.items()}
    for override in overrides:
        role, sep, target = str(override).partition("=")
        role = role.strip()
        if not sep or not role or not target.strip():
            raise ConfigError(
                f"--model {override!r}: expected ROLE=BACKEND or ROLE=BACKEND:MODEL,"
                " e.g. --model large=llamacpp"
            )
        backend, _, model = target.strip().partition(":")
        old = specs.get(role)
        if old is not None and old.backend == backend:
            options = dict(old.options)
        else:
            options = {}
        if model:
            options["model"] = model
        policy = {k: getattr(old, k) for k in POLICY_KEYS} if old else {}
        specs[role] = ModelSpec(role=role, backend=backend, options=options, **policy)
    if registry is not None:
        for spec in specs.values():
            try:
                cls = registry.backend(spec.backend)
            except ConfigError as exc:
                raise ConfigError(f"{config.source}: models.{spec.role}: {exc}") from None
            if check_options:
                _check_options(cls, spec, config)
    return specs


def _check_options(cls, spec: ModelSpec, config) -> None:
    """The backend's own look at its options (``Backend.check_options``), nothing started."""
    from ..errors import run_check

    check = _options_check_for(cls)
    if check is not None:
        run_check(check, spec.options,
                  refused=f"{config.source}: models.{spec.role}: backend {spec.backend!r}",
                  broken=f"backend {spec.backend!r}: its option check failed",
                  secrets=config.secret_values())


def _options_check_for(cls):
    """The ``check_options`` that describes ``cls.__init__``, or None.

    A subclass that redefines ``__init__`` (say, an OpenAI-compatible backend
    with options of its own) but not ``check_options`` would otherwise inherit
    a check written for its parent's options and be refused; it gets the
    default, signature-based check instead.
    """
    from .base import Backend

    def defined_by(name):
        return next((klass for klass in cls.__mro__ if name in vars(klass)), None)

    check_from = defined_by("check_options")
    if check_from is None:
        return None  # not a Backend subclass: it checks its options when it is made
    init_from = defined_by("__init__")
    if init_from is not check_from and init_from is not None and issubclass(init_from, check_from):
        return Backend.check_options.__func__.__get__(cls)
    return cls.check_options
