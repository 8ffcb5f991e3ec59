"""Constraints on config values, enforced before anything runs: one way for pipelines,
backends, executors and reporters.

(The words atk uses: a *constraint* is what a config value must be, declared in an
annotation and enforced here; a plugin *vets* its options with its own code when an
annotation cannot say it (``Pipeline(vet=...)``, ``Backend.vet_options``); ``plan()``
is the pre-flight of a whole run; a *gate* judges generated text without a model; a
*verdict* is a model's yes or no on a sample, applied as ``verdicts:`` says.)

A pipeline function's parameters, and a backend's or progress reporter's
``__init__`` parameters, say what they accept with ordinary type
annotations; bounds and other limits go into ``typing.Annotated``::

    from typing import Annotated, Literal
    from atk_core import AtLeast, Between, NonEmpty

    async def my_pipeline(*, input_dir: str, output_dir: str,
                          chunk_size: Annotated[int, AtLeast(200)] = 3000,
                          temperature: Annotated[float, Between(0, 2)] = 0.7,
                          style: Literal["plain", "formal"] = "plain",
                          system_prompts: Annotated[list[str], NonEmpty] = ("Be brief.",),
                          task_id=None, **kwargs): ...

``atk run`` checks every value a config sets against its parameter's
annotation before it writes anything, and refuses a wrong one in one line
naming the field, the value and what is allowed (exit status 2)::

    atk: error: cfg.yaml: chunk_size must be a whole number of at least 200, not 10

What an annotation can say: ``int`` (a whole number; ``true`` is not one),
``float`` (any finite number), ``bool``, ``str``, ``pathlib.Path`` (a path
as text), ``list[X]`` or ``tuple[X, ...]`` (a single ``X`` is taken as a
list of one), ``dict``, ``Literal[...]`` (one of the listed values),
``X | None``, unions of these, a dataclass (a mapping of some of its fields,
each checked against the field's annotation, the rest taking their
defaults: settings grouped under one key, like factual-qa's ``gates:``; a
``ValueError`` from its ``__post_init__`` is the config's mistake), and
any other class (an instance of it).
Parameters without an annotation, or annotated ``Any`` or ``Callable``,
are not checked.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import types
import typing
import warnings
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from ..errors import AtkError, ConfigError, PluginError, one_line
from ..engine.redaction import scrub


# -- what an annotation can add ----------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``minimum``/``maximum``, each included unless ``*_open``.

    ``unit`` names what the number counts, for the message ("seconds").
    ``AtLeast``, ``Above``, ``AtMost`` and ``Between`` are the usual shapes.
    """

    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    maximum_open: bool = False
    unit: str | None = None

    def allows(self, value) -> bool:
        if self.minimum is not None and (value < self.minimum or (self.minimum_open and value == self.minimum)):
            return False
        if self.maximum is not None and (value > self.maximum or (self.maximum_open and value == self.maximum)):
            return False
        return True

    def describe(self) -> str:
        low = high = ""
        if self.minimum is not None:
            low = f"above {self.minimum:g}" if self.minimum_open else f"at least {self.minimum:g}"
        if self.maximum is not None:
            high = f"below {self.maximum:g}" if self.maximum_open else f"at most {self.maximum:g}"
        if low and high:
            if not self.minimum_open and not self.maximum_open:
                return f"from {self.minimum:g} to {self.maximum:g}"
            return f"{low} and {high}"
        return low or high


def AtLeast(minimum, *, unit: str | None = None) -> Range:
    """A number ``>= minimum``."""
    return Range(minimum=minimum, unit=unit)


def Above(minimum, *, unit: str | None = None) -> Range:
    """A number ``> minimum``."""
    return Range(minimum=minimum, minimum_open=True, unit=unit)


def AtMost(maximum, *, unit: str | None = None) -> Range:
    """A number ``<= maximum``."""
    return Range(maximum=maximum, unit=unit)


def Between(minimum, maximum, *, minimum_open: bool = False, maximum_open: bool = False,
            unit: str | None = None) -> Range:
    """A number from ``minimum`` to ``maximum`` (both included unless said otherwise)."""
    return Range(minimum, maximum, minimum_open, maximum_open, unit)


@dataclass(frozen=True)
class _NonEmpty:
    """A text with something besides spaces in it, or a list with at least one item."""

    def __repr__(self):
        return "NonEmpty"


NonEmpty = _NonEmpty()


# -- enforcing ----------------------------------------------------------------------------------


class _Refused(Exception):
    """A value that does not fit; the message says what would."""


def enforce_constraint(name: str, value, annotation):
    """``value`` if it fits ``annotation`` (a single item given for a list becomes a list of
    one), else ``ConfigError("NAME must be WHAT IS ALLOWED, not VALUE")``."""
    try:
        return _conform(value, annotation)
    except _Nested as exc:
        raise ConfigError(f"{name}.{exc.name} must be {exc.allowed}, not {_shown(exc.value)}") from None
    except _Inconsistent as exc:
        raise ConfigError(f"{name}: {exc}") from None
    except _Refused as exc:
        raise ConfigError(f"{name} must be {exc}, not {_shown(value)}") from None


def enforce_constraints(function, values: dict, *, refuse_unknown: bool = False,
                    owner: str | None = None, supplied=(), up_to: type | None = None) -> dict:
    """The ``values`` meant for ``function``'s parameters, each checked against its annotation.

    ``function`` is a function or a class. For a class, its ``__init__`` is
    read, and where that takes ``**kwargs`` the parents' ``__init__`` too
    (a subclass passes what it does not name on to its parent), up to but not
    including ``up_to``. Values for parameters without an annotation pass as
    they are. With ``refuse_unknown`` (options from a config, for a class), a
    name nobody takes is refused (unless the last ``__init__`` read takes
    ``**kwargs``), and so is a class's required parameter left out; ``owner``
    (say "the webhook reporter") names what does not take it; the parameters
    in ``supplied`` (filled in by atk, like a reporter's ``output_dir``) are
    neither required nor listed.
    """
    import inspect

    checked, remaining, named = dict(values), dict(values), []
    targets = _targets(function, up_to)
    if not targets:  # a class that declares no __init__ of its own takes what its base takes
        return checked
    open_ended = False
    required = []
    for target in targets:
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return checked
        hints = annotations_of(target)
        for name, parameter in parameters.items():
            if name == "self" or parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD,
                                                        parameter.KEYWORD_ONLY):
                continue
            if name not in named:
                named.append(name)
                if parameter.default is parameter.empty and target is targets[0]:
                    required.append(name)
            if name in remaining:
                value = remaining.pop(name)
                checked[name] = enforce_constraint(name, value, hints[name]) if name in hints else value
        open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        if not open_ended:
            break
    else:
        if up_to is not None and isinstance(function, type) and function is not up_to:
            open_ended = False  # what is passed on reaches up_to, which takes none of it
    listed = [n for n in named if n not in supplied]
    if refuse_unknown and remaining and not open_ended:
        who = f"; {owner} takes {', '.join(listed) or 'none'}" if owner else ""
        raise ConfigError(f"unknown option(s) {', '.join(sorted(map(str, remaining)))}{who}")
    missing = [n for n in required if n not in values and n not in supplied]
    if refuse_unknown and isinstance(function, type) and missing:
        who = f" ({owner} needs {', '.join(missing)})" if owner else ""
        raise ConfigError(f"missing option(s) {', '.join(missing)}{who}")
    return checked


def _targets(function, up_to):
    """The functions whose parameters say what ``function`` takes (see ``enforce_constraints``)."""
    if not isinstance(function, type):
        return [function]
    stop = up_to.__mro__ if up_to is not None else (object,)
    return [klass.__init__ for klass in function.__mro__
            if "__init__" in vars(klass) and klass not in stop]


def annotations_of(function) -> dict[str, Any]:
    """The parameters' annotations, resolved (``from __future__ import annotations`` too)."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception as exc:  # a name the annotation uses cannot be found: the plugin's bug
        name = getattr(function, "__qualname__", repr(function))
        raise PluginError(f"cannot read the annotations of {name}: {one_line(exc)}") from None


def _conform(value, annotation):
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        try:
            value = _conform(value, base)
        except _Refused:
            raise _Refused(_with_limits(_describe(base), extras)) from None
        return _limited(value, base, extras)
    if annotation is Any:
        return value
    if annotation is None or annotation is type(None):
        if value is None:
            return None
        raise _Refused("empty (null)")
    if origin in (Union, types.UnionType):
        return _either(value, typing.get_args(annotation))
    if origin is Literal:
        choices = typing.get_args(annotation)
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        raise _Refused("one of " + ", ".join(_shown(c) for c in choices))
    if origin in (list, tuple, typing.Sequence, _abc_sequence()):
        return _sequence(value, annotation, origin)
    if origin is dict or annotation is dict:
        if isinstance(value, dict):
            return value
        raise _Refused("a mapping of keys to values")
    if origin is not None or not isinstance(annotation, type):
        return value  # Callable, a TypeVar...: not something a config can get wrong
    if dataclasses.is_dataclass(annotation):
        return _settings(value, annotation)
    return _instance(value, annotation)


def _settings(value, kind: type):
    """A dataclass of settings from a mapping of some of its fields (None: all defaults)."""
    if isinstance(value, kind):
        return value
    if value is None:
        value = {}
    names = [f.name for f in dataclasses.fields(kind) if f.init]
    if not isinstance(value, dict):
        raise _Refused(f"a mapping of {', '.join(names)}")
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        from ..errors import did_you_mean

        hint = did_you_mean(unknown[0], names)
        raise _Refused(f"a mapping of {', '.join(names)}" + (f" ({hint})" if hint else "")
                       + f"; it has {', '.join(unknown)}")
    hints = annotations_of(kind)
    checked = {}
    for name, item in value.items():
        try:
            checked[name] = _conform(item, hints[name]) if name in hints else item
        except _Refused as exc:
            raise _Nested(name, str(exc), item) from None
    try:
        return kind(**checked)
    except ValueError as exc:  # the dataclass's __post_init__ found its fields at odds
        raise _Inconsistent(str(exc)) from None


class _Inconsistent(_Refused):
    """Settings each fine alone, at odds together (a dataclass's ``__post_init__`` said so)."""


class _Nested(_Refused):
    """A field inside a mapping of settings was refused: its own name leads the message."""

    def __init__(self, name, allowed, value):
        super().__init__(allowed)
        self.name, self.allowed, self.value = name, allowed, value


def _instance(value, kind: type):
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise _Refused("true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Refused("a whole number")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return value
        raise _Refused("a number")
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, pathlib.PurePath):  # a path given in code (input_dir=Path(...)): its text
            return str(value)
        raise _Refused("a text")
    if issubclass(kind, pathlib.PurePath):
        if isinstance(value, (str, pathlib.PurePath)) and str(value).strip():
            return value
        raise _Refused("a path")
    if kind in (list, tuple):
        return _sequence(value, kind, kind)
    if isinstance(value, kind):
        return value
    raise _Refused(f"a {kind.__name__}")


def _sequence(value, annotation, origin):
    arguments = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    item = arguments[0] if len(arguments) == 1 else Any
    if not isinstance(value, (list, tuple)):
        # A config often gives one value where a list is wanted: a list of one.
        try:
            return [_conform(value, item)]
        except _Refused:
            raise _Refused(f"a list of {_plural(item)}") from None
    try:
        return type(value)(_conform(v, item) for v in value)
    except _Refused:
        raise _Refused(f"a list of {_plural(item)}") from None


def _either(value, options):
    if value is None and type(None) in options:
        return None
    wanted = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _conform(value, option)
        except _Refused as exc:
            wanted.append(str(exc))
    raise _Refused(" or ".join(dict.fromkeys(wanted)))


def _limited(value, base, extras):
    for extra in extras:
        if ((isinstance(extra, Range) and isinstance(value, (int, float)) and not extra.allows(value))
                or (isinstance(extra, _NonEmpty) and not _has_content(value))):
            raise _Refused(_with_limits(_describe(base), extras))
    return value


def _with_limits(kind: str, extras) -> str:
    """What a type with its limits allows: "a whole number of at least 1", "a non-empty text"."""
    for extra in extras:
        if isinstance(extra, _NonEmpty):
            kind = f"a non-empty {kind.removeprefix('a ')}"
    for extra in extras:
        if isinstance(extra, Range):
            kind = _with_range(kind, extra)
    return kind


def _has_content(value) -> bool:
    if value is None:
        return True  # None is allowed or refused by the type, not by NonEmpty
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple, dict)):
        return len(value) > 0 and all(_has_content(v) for v in value if isinstance(v, str))
    return True


def _with_range(kind: str, bounds: Range) -> str:
    if bounds.unit:  # "a number of seconds, at least 0"
        return f"{kind} of {bounds.unit}, {bounds.describe()}"
    joiner = " of " if bounds.describe().startswith("at least") and kind.endswith("whole number") else " "
    return f"{kind}{joiner}{bounds.describe()}"


def _describe(annotation) -> str:
    try:
        _conform(object(), annotation)
    except _Refused as exc:
        return str(exc)
    return "a value"


_PLURALS = {"a whole number": "whole numbers", "a number": "numbers", "a text": "texts",
            "true or false": "true/false values", "a path": "paths",
            "a mapping of keys to values": "mappings"}


def _plural(item) -> str:
    if item is Any:
        return "values"
    described = _describe(item)
    return _PLURALS.get(described, described)


def _abc_sequence():
    import collections.abc

    return collections.abc.Sequence


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def require_roles(models: dict, uses: dict) -> None:
    """For a pipeline's vetter: ``ConfigError`` naming the first role in ``uses`` (role -> the
    steps that use it) that the config's ``models`` does not define. A role no step uses
    (an empty list) is not required."""
    for role, steps in uses.items():
        if steps and role not in models:
            defined = ", ".join(sorted(models)) or "none"
            raise ConfigError(f"models: has no {role!r} role, which the {', '.join(steps)} step(s)"
                              f" use (defined: {defined})")


# -- calling a plugin's own vetter -----------------------------------------------------------------


def vetter_of(cls):
    """A plugin class's own vetter (``vet_options``), or None. A class written before the
    rename may still define it as ``check_options``: that is used, with a warning."""
    legacy = getattr(cls, "check_options", None)
    if legacy is not None:
        warnings.warn(f"{cls.__name__}.check_options is now called vet_options", DeprecationWarning,
                      stacklevel=2)
        return legacy
    return getattr(cls, "vet_options", None)


def run_vetter(vetter, options: dict, *, refused: str, broken: str, secrets=()) -> None:
    """Call a plugin's vetter: ``ValueError``/``ConfigError`` is the user's mistake
    (a ``ConfigError`` after ``refused``); anything else is the plugin's bug (a
    ``PluginError`` after ``broken``). Messages are one line, with secrets hidden."""
    try:
        vetter(**options)
    except (ConfigError, ValueError) as exc:
        message = one_line(exc) if isinstance(exc, AtkError) else (
            str(exc).strip().splitlines() or ["invalid value"])[0]
        raise ConfigError(scrub(f"{refused}: {message}", secrets)) from None
    except Exception as exc:
        raise PluginError(scrub(f"{broken}: {one_line(exc)}", secrets)) from None
