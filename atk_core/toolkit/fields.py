"""Config fields several pipelines share, declared once.

A pipeline's config fields are its function's keyword parameters, checked
against their annotations. Some fields mean the same in every pipeline over
documents — how the documents are chunked and sampled, the sampling settings
of its requests — and would otherwise be declared again, with their checks
and defaults, in every one. Declare them once as a frozen dataclass; a
pipeline takes one as a parameter, and ``with_fields`` flattens the
dataclass's fields into the function's signature. A config sets them at the
top level (``chunk_size: 2000``, not ``documents: {chunk_size: 2000}``), atk
checks them like any other field, and the function gets them back as one
instance::

    from atk_core import Documents, Sampling, with_fields

    @with_fields(documents=Documents(), sampling=Sampling(max_tokens=1024))
    async def my_pipeline(*, input_dir: str, output_dir: str, documents: Documents,
                          sampling: Sampling, style: str = "plain", task_id=None, **kwargs):
        ... documents.chunk_size ... sampling.temperature ...

The instance given for a group holds the pipeline's defaults for its fields.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Annotated

from .constraints import AtLeast, Between, annotations_of


@dataclass(frozen=True)
class Documents:
    """How a pipeline chunks and samples its documents."""

    chunk_size: Annotated[int, AtLeast(200)] = 3000  # about how many characters per chunk
    use_subset: bool = False  # work on a seeded sample of the chunks
    subset_size: Annotated[int, AtLeast(1)] = 100  # how many, when use_subset
    min_chunk_words: Annotated[int, AtLeast(0)] = 5  # the content gate (0: off)
    # How much of the corpus (bytes of input files) a pipeline that streams (factual-qa)
    # holds at once: it reads, asks about and writes one shard after another.
    shard_bytes: Annotated[int, AtLeast(1)] = 4_000_000

    @property
    def subset(self) -> int | None:
        """How many chunks to sample, or None for all of them."""
        return self.subset_size if self.use_subset else None


Temperature = Annotated[float, Between(0, 2)]


@dataclass(frozen=True)
class Sampling:
    """How a pipeline's requests are sampled and retried."""

    temperature: Temperature = 0.7  # of the requests that write
    check_temperature: Temperature = 0.6  # of the requests that check (yes/no votes)
    max_tokens: Annotated[int, AtLeast(16)] = 512  # longest answer
    max_attempts: Annotated[int, AtLeast(1)] = 3  # tries per sample (malformed, failed a gate)

    def writing(self, seed: int, *, max_tokens: int | None = None) -> dict:
        """A writing step's options (``PipelineStep(**sampling.writing(seed))``): temperature,
        tries, seed, and the longest answer (``max_tokens``, or a step's own lower bound:
        ``writing(seed, max_tokens=256)`` gives the smaller of the two)."""
        longest = self.max_tokens if max_tokens is None else min(self.max_tokens, max_tokens)
        return {"temperature": self.temperature, "max_attempts": self.max_attempts, "seed": seed,
                "max_tokens": longest}

    def checking(self, seed: int) -> dict:
        """A checking step's options (a ``VoteStep``'s)."""
        return {"temperature": self.check_temperature, "max_attempts": self.max_attempts, "seed": seed}


def with_fields(**groups):
    """Decorator: for each ``name=instance`` of a frozen dataclass, the parameter ``name`` of
    the pipeline function becomes that dataclass's fields, as keyword parameters with the
    instance's values as defaults; a call gets them back as one instance under ``name``."""
    for name, defaults in groups.items():
        if not dataclasses.is_dataclass(defaults) or isinstance(defaults, type):
            raise TypeError(f"with_fields: {name}= must be a dataclass instance, not {defaults!r}")

    def decorate(function):
        signature = inspect.signature(function)
        hints = annotations_of(function)
        missing = [name for name in groups if name not in signature.parameters]
        if missing:
            raise TypeError(f"with_fields: {function.__qualname__} has no parameter"
                            f" {', '.join(missing)}")
        parameters, annotations, members = [], {}, {}
        for name, parameter in signature.parameters.items():
            if name not in groups:
                parameters.append(parameter)
                if name in hints:
                    annotations[name] = hints[name]
                continue
            defaults = groups[name]
            group_hints = typing.get_type_hints(type(defaults), include_extras=True)
            members[name] = []
            for field in dataclasses.fields(defaults):
                if field.name in signature.parameters or field.name in annotations:
                    raise TypeError(f"with_fields: {function.__qualname__} declares"
                                    f" {field.name!r} twice")
                members[name].append(field.name)
                annotations[field.name] = group_hints[field.name]
                parameters.append(inspect.Parameter(
                    field.name, inspect.Parameter.KEYWORD_ONLY,
                    default=getattr(defaults, field.name), annotation=group_hints[field.name]))
        order = {kind: i for i, kind in enumerate(
            (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.KEYWORD_ONLY,
             inspect.Parameter.VAR_KEYWORD))}
        parameters.sort(key=lambda p: order[p.kind])  # stable: keyword-only ones keep their place

        def regroup(kwargs: dict) -> dict:
            for name, fields in members.items():
                base = kwargs.pop(name, groups[name])  # a caller in Python may pass the group
                if isinstance(base, dict):
                    base = dataclasses.replace(groups[name], **base)
                values = {field: kwargs.pop(field) for field in fields if field in kwargs}
                kwargs[name] = dataclasses.replace(base, **values)
            return kwargs

        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def wrapper(**kwargs):
                return await function(**regroup(kwargs))
        else:
            @functools.wraps(function)
            def wrapper(**kwargs):
                return function(**regroup(kwargs))
        wrapper.__signature__ = signature.replace(parameters=parameters)
        wrapper.__annotations__ = annotations
        wrapper.field_groups = {name: tuple(fields) for name, fields in members.items()}
        return wrapper

    return decorate
