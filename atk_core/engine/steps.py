"""PipelineStep: the shared part of every LLM call a pipeline makes.

A step loads its prompt, fills it from each sample, sends it to a model role,
parses the answer (JSON schema, regex or a function), validates it, and
retries with the problem available to the prompt as ``{error_message}``. A
sample that still fails after the last attempt is recorded with its reason
and skipped. All samples go to the run's executor (by default in-process, all
concurrently under the role's limit, in a stream: a new request starts as soon
as one finishes); results come back in input order. Answers are stored, so running the step again sends nothing
that was answered before.

Samples are mappings with a stable ``id`` (derive it from content, not from a
counter, so runs can be split across machines and merged).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError, PipelineError
from .executors import LocalExecutor, StepTask, stream  # noqa: F401  (stream: public here too)
from ..models.base import RequestError, TransientError
from .policy import gate_policy
from .progress import say, set_progress
from .prompts import RETRY_NOTE
from ..toolkit.seeds import derive_seed




@dataclass
class StepResult:
    """What one step made of one sample; a failed one says why (``reason``) and what kind of
    failure it was (``kind``, short, counted in the manifest)."""

    sample_id: str
    ok: bool
    value: Any = None
    reason: str | None = None
    attempts: int = 0
    kind: str | None = None


@dataclass
class StepEnvironment:
    """Where a step finds its models and prompts; taken from the run by default."""

    models: dict  # role -> Model (a run's models carry its store)
    prompts: Any  # PromptLibrary
    task_id: str | None = None

    @classmethod
    def from_run(cls) -> "StepEnvironment":
        from .context import current_run
        from .prompts import PromptLibrary

        run = current_run()
        if run is None:
            raise PipelineError(
                "this step runs outside `atk run`; pass env=StepEnvironment(models=..., prompts=...)"
            )
        if run.prompt_library is None:
            run.prompt_library = PromptLibrary.for_run(run)
        return cls(run.models, run.prompt_library, run.task_id)


@dataclass
class PipelineStep:
    """One LLM call per sample, from prompt file to validated value.

    Parse with ``json_schema`` (structured output, checked against the
    schema), ``regex`` (the ``group`` of the first match) or ``parser`` (a
    function of the text that raises ValueError on bad input); with none of
    them the value is the stripped text. ``validator(value, sample)`` returns
    ``None`` or a ``Problem`` (the quality gates' verdict: a ``kind`` and a
    ``message``), or ``(ok, message)``, or a bool; a failure's message is
    shown to the next attempt as ``{error_message}`` (the bare message) and
    ``{retry_note}`` (a sentence asking for a fixed answer); both are empty on
    the first attempt. A sample that fails every attempt has the last
    problem's kind (``"malformed answer"`` for one that never parsed,
    ``"rejected"`` for a validator's plain no).
    With ``many=True`` the parsed value must be a list (one input, many outputs).
    With ``gate_copies=True`` an answer that copies five or more words in a row
    from the prompt's own instructions or examples (not from the sample's
    values) is rejected and retried, before the validator runs: a small model
    often repeats the example instead of answering.
    """

    name: str
    prompt: str
    model: str = "large"
    json_schema: dict | None = None
    regex: str | None = None
    group: int | str = 1
    parser: Callable[[str], Any] | None = None
    validator: Callable[..., Any] | None = None
    max_attempts: int = 3
    many: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)
    gate_copies: bool = False

    def __post_init__(self):
        parsers = sum(x is not None for x in (self.json_schema, self.regex, self.parser))
        if parsers > 1:
            raise ConfigError(f"step {self.name!r}: give one of json_schema, regex or parser")
        if self.max_attempts < 1:
            raise ConfigError(f"step {self.name!r}: max_attempts must be at least 1")
        self._pattern = re.compile(self.regex, re.DOTALL) if self.regex else None

    # -- running -------------------------------------------------------------------------

    async def run(self, samples, *, env: StepEnvironment | None = None,
                  progress: tuple[float, float] = (0.0, 1.0)) -> list[StepResult]:
        """Run every sample; results in input order. ``progress`` is this step's share of the bar."""
        env = env or StepEnvironment.from_run()
        model = self._model(env)
        prompt = env.prompts.load(self.prompt)
        note = env.prompts.retry_note()
        mode = "chat" if prompt.is_chat else "completion"
        if mode not in getattr(model.backend, "modes", (mode,)):
            raise ConfigError(
                f"step {self.name!r}: prompt {prompt.source} is a {mode} prompt, but the"
                f" {model.spec.backend!r} backend of role {self.model!r} serves only"
                f" {', '.join(model.backend.modes)}"
            )
        samples = list(samples)
        _check_ids(self.name, samples)

        own = prompt.own_words() if self.gate_copies else None
        task = StepTask(self, prompt, note, own, model)
        executor = _executor()
        if samples:  # until the first answer, say what the run is waiting for (the bar stays)
            say(env.task_id, f"{self.name}: 0/{len(samples)}, waiting for the {self.model} model's"
                             " first answers")
        results = await executor.run(task, samples, on_done=_progress_reporter(
            env.task_id, self.name, len(samples), progress))
        _count_calls(self, samples, results)
        return results

    def run_sync(self, samples, **kwargs) -> list[StepResult]:
        """``run`` for pipelines written as plain functions."""
        return asyncio.run(self.run(samples, **kwargs))

    def _model(self, env):
        try:
            return env.models[self.model]
        except KeyError:
            roles = ", ".join(sorted(env.models)) or "none"
            raise ConfigError(
                f"step {self.name!r} uses model role {self.model!r}, which the config's models:"
                f" does not define (defined: {roles})"
            ) from None

    async def _one(self, sample, model, prompt, tag_suffix: str = "",
                   note: str = RETRY_NOTE, own: str | None = None) -> StepResult:
        sample_id = str(sample["id"])
        problem = kind = None
        for attempt in range(self.max_attempts):
            values = dict(sample)
            values.setdefault("error_message", problem or "")
            values.setdefault("retry_note", note.replace("{problem}", problem) if problem else "")
            try:
                response = await self._ask(model, prompt, values, sample_id, attempt, tag_suffix)
            except (RequestError, TransientError) as exc:
                # The model could not answer this one; more attempts would not help.
                return StepResult(sample_id, False, reason=f"{self.name}: {exc}", attempts=attempt + 1,
                                  kind="model error")
            value, problem = self._parse(response)
            kind = "malformed answer"
            policy = gate_policy()
            if problem is not None:
                problem = policy.unparsed(self.name, problem)
            if problem is None:
                problem, kind = policy.gate(self._gates, value, own, sample) or (None, None)
            if problem is None:
                return StepResult(sample_id, True, value, attempts=attempt + 1)
        plural = "s" if self.max_attempts > 1 else ""
        return StepResult(sample_id, False, reason=f"{self.name}: {problem}"
                          f" (after {self.max_attempts} attempt{plural})", attempts=self.max_attempts,
                          kind=kind)

    async def _ask(self, model, prompt, values, sample_id, attempt, tag_suffix):
        rendered = prompt.render(values)
        parameters = dict(
            tag=f"{self.name}#{attempt}{tag_suffix}",
            seed=derive_seed(self.seed, sample_id, attempt, tag_suffix),
            json_schema=self.json_schema,
            extra=self.extra,
            stop=self.stop,
            **{k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p),
                                 ("max_tokens", self.max_tokens)) if v is not None},
        )
        if prompt.is_chat:
            return await model.chat(rendered, **parameters)
        return await model.complete(rendered, **parameters)

    def _parse(self, response):
        if self.json_schema is not None:
            if response.parse_error:
                return None, response.parse_error
            value = response.parsed
        elif self._pattern is not None:
            match = self._pattern.search(response.text)
            if match is None:
                return None, f"the answer does not match the expected format ({self.regex})"
            value = match.group(self.group)
        elif self.parser is not None:
            try:
                value = self.parser(response.text)
            except (ValueError, KeyError, TypeError) as exc:
                return None, f"the answer could not be parsed: {exc}"
        else:
            value = response.text.strip()
        if self.many and not isinstance(value, list):
            return None, "expected a list of items"
        return value, None

    def _gates(self, value, own, sample) -> tuple[str, str] | None:
        """(problem message, kind) of the first gate the value fails (nothing copied from the
        prompt's own words, then the validator), or None when it passes them all."""
        if own is not None:
            problem, kind = _copied(value, own, sample)
            if problem is not None:
                return problem, kind
        problem, kind = self._validate(value, sample)
        return (problem, kind) if problem is not None else None

    def _validate(self, value, sample) -> tuple[str | None, str | None]:
        """(problem message, kind), or (None, None) when the value passes."""
        if self.validator is None:
            return None, None
        verdict = self.validator(value, sample)
        if verdict is None:
            return None, None
        kind = getattr(verdict, "kind", None)
        if kind is not None:  # a gate's Problem
            return str(verdict), kind
        ok, message = verdict if isinstance(verdict, tuple) else (bool(verdict), None)
        return (None, None) if ok else (message or "the answer did not pass validation", "rejected")


@dataclass
class VoteStep(PipelineStep):
    """Majority vote: ask ``votes`` times (seeds differ), pass if ``threshold`` of them agree.

    ``decide(value)`` turns one parsed answer into a yes/no vote (default:
    ``bool(value)``). Voting stops as soon as the outcome is certain. The
    result's value is ``{"passed", "yes", "no", "votes"}``; a sample that
    does not pass is a failed result, with the tally as its reason.
    """

    votes: int = 3
    threshold: float = 0.5
    decide: Callable[[Any], bool] | None = None

    @classmethod
    def yes_no(cls, name: str, prompt: str, field: str, **options) -> "VoteStep":
        """A vote whose answers are ``{"reason": "...", FIELD: true|false}`` (a JSON schema,
        so even a small model answers in that shape), a yes when FIELD is true."""
        options.setdefault("max_tokens", 256)
        return cls(name=name, prompt=prompt, json_schema=yes_no_schema(field),
                   decide=lambda value: value[field], **options)

    async def _one(self, sample, model, prompt, tag_suffix: str = "",
                   note: str = RETRY_NOTE, own: str | None = None) -> StepResult:
        needed = max(1, -(-int(self.threshold * self.votes * 1000) // 1000))  # ceil, float-safe
        yes = no = attempts = 0
        reasons = []
        for vote in range(self.votes):
            result = await super()._one(sample, model, prompt, tag_suffix=f"/vote{vote}", note=note,
                                        own=own)
            attempts += result.attempts
            if result.ok and gate_policy().verdict(self.decide or bool, result.value):
                yes += 1
            else:
                no += 1
                if not result.ok:
                    reasons.append(result.reason)
            if yes >= needed or self.votes - no < needed:
                break
        tally = {"passed": yes >= needed, "yes": yes, "no": no, "votes": yes + no}
        if tally["passed"]:
            return StepResult(str(sample["id"]), True, tally, attempts=attempts)
        detail = f"; {reasons[0]}" if reasons and len(reasons) == no else ""
        return StepResult(str(sample["id"]), False, tally, attempts=attempts,
                          reason=f"{self.name}: {yes} of {yes + no} votes passed,"
                                 f" {needed} of {self.votes} needed{detail}", kind="failed the vote")


def yes_no_schema(field: str) -> dict:
    """The JSON schema of a yes/no check: ``{"reason": "...", FIELD: true|false}``."""
    return {"type": "object",
            "properties": {"reason": {"type": "string"}, field: {"type": "boolean"}},
            "required": ["reason", field]}


# -- helpers ------------------------------------------------------------------------------------


def _copied(value, own: str, sample) -> tuple[str | None, str | None]:
    """Whether any text in ``value`` copies the prompt's own words (not the sample's)."""
    from ..toolkit.gates import copied_problem

    given = " ".join(v for v in sample.values() if isinstance(v, str))
    for text in _texts(value):
        problem = copied_problem(text, own, given)
        if problem is not None:
            return str(problem), problem.kind
    return None, None


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)


def _count_calls(step, samples, results) -> None:
    """Add what the step did to the run's per-step counts (the manifest's ``calls``)."""
    from .context import current_run

    run = current_run()
    if run is None:
        return
    entry = run.calls.setdefault(step.name, {"role": step.model, "samples": 0, "ok": 0,
                                             "requests": 0})
    entry["samples"] += len(samples)
    entry["ok"] += sum(1 for result in results if result.ok)
    entry["requests"] += sum(result.attempts for result in results)


def _executor():
    """The run's executor (``executor:`` in its config), or in-process outside a run."""
    from .context import current_run

    run = current_run()
    executor = getattr(run, "executor", None) if run is not None else None
    return executor if executor is not None else LocalExecutor()


def _check_ids(step, samples):
    seen = set()
    for sample in samples:
        if "id" not in sample:
            raise PipelineError(f"step {step!r}: every sample needs an 'id'")
        if sample["id"] in seen:
            raise PipelineError(f"step {step!r}: sample id {sample['id']!r} appears twice")
        seen.add(sample["id"])


def _progress_reporter(task_id, name, total, share):
    start, end = share
    last = [-1]

    def report(done):
        percent = done * 100 // total
        if percent != last[0] or done == total:
            last[0] = percent
            set_progress(task_id, start + (end - start) * done / total, f"{name}: {done}/{total}")

    return report
