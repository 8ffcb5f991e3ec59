"""``atk run CONFIG --estimate``: what a run would ask, and cost, before it asks anything.

The pipeline runs for real on the real inputs, in a temporary folder, against
a dry-run backend in every role: it answers each request at once with a
placeholder that fits the request's JSON schema, and every answer passes (the
run's ``GatePolicy`` is ``PassEverything``: a step's validator, its copy gate,
a vote and a record's gate are taken as passed), so each sample goes as far as
it can. That gives,
per step and role, exactly the requests the run makes when every sample
survives on its first attempt, and each one's prompt, counted in tokens.

What cannot be known before asking — how many samples survive each step, how
many attempts they take, how long the answers are — is either taken from a
previous run of the same pipeline in the config's output folder (its
manifest's ``calls`` and token totals) or assumed, and the assumptions are
printed with the figures. Nothing is sent and nothing is written to the
output folder.
"""

from __future__ import annotations

import contextvars
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from ..engine.executors import Executor, LocalExecutor
from ..models.base import Backend, Response, Usage
from ..engine.policy import GatePolicy
from ..toolkit.schemas import value_for_schema
from ..toolkit.tokens import MESSAGE_OVERHEAD, token_counter

OUTSIDE = "(outside steps)"
# Without a previous run to learn from: a step after the first sees at least this share of
# the samples it would see if all survived.
ASSUMED_REACH = 0.25
# Completion tokens per request without a previous run: at least this many, at most the
# request's max_tokens (or this default ceiling when it sets none).
ASSUMED_COMPLETION_MIN = 20
ASSUMED_COMPLETION_MAX = 1000
PREVIOUS_SPREAD = (0.8, 1.25)
# Prompt tokens at the high end: a counted prompt can come out this much longer at the server
# (the bytes/4 estimate is within about 15% on English prose; a chat template, a retry's note
# of what was wrong add a little even to an exact count).
PROMPT_MARGIN = {"estimate": 0.2, "tokenizer": 0.05}  # the range around what a previous run's rates predict

_recorder: contextvars.ContextVar = contextvars.ContextVar("atk_estimate_recorder", default=None)
_step: contextvars.ContextVar = contextvars.ContextVar("atk_estimate_step", default=OUTSIDE)


@dataclass
class Row:
    """One step's requests to one role, when every sample survives on its first attempt."""

    step: str
    role: str
    samples: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    # of those, the tokens of prompt prefixes the provider's cache would hold (the backend's
    # cache_prefixes): read from it (a prefix seen before), written to it (a new one)
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    completion_ceiling: int = 0  # the sum of the requests' max_tokens (or the default ceiling)
    ceiling: int = 0  # requests if every sample used every attempt (and every vote was asked)
    floor: int = 0  # the fewest requests its samples can take (a vote stopped early)
    # filled in from a previous run, or the assumptions
    requests_low: float = 0.0
    requests_high: float = 0.0
    margin: float = 0.0  # how much longer a prompt can be at the server than counted here
    completion_low: float = 0.0  # per request
    completion_high: float = 0.0
    cost_low: float | None = None
    cost_high: float | None = None
    cost_at_most: float | None = None  # every request asked, every answer max_tokens long

    def to_dict(self) -> dict[str, Any]:
        cached = {"cache_read_tokens_if_all_survive": self.cache_read_tokens,
                  "cache_write_tokens_if_all_survive": self.cache_write_tokens} \
            if self.cache_read_tokens or self.cache_write_tokens else {}
        return {"step": self.step, "role": self.role, "samples": self.samples,
                "requests_if_all_survive": self.requests, "prompt_tokens_if_all_survive": self.prompt_tokens,
                **cached,
                "requests": [math.floor(self.requests_low), math.ceil(self.requests_high)],
                "prompt_tokens": [math.floor(self._per_request() * self.requests_low),
                                  math.ceil(self._per_request() * (1 + self.margin) * self.requests_high)],
                "completion_tokens": [math.floor(self.completion_low * self.requests_low),
                                      math.ceil(self.completion_high * self.requests_high)],
                "cost": None if self.cost_low is None else [round(self.cost_low, 6),
                                                            round(self.cost_high, 6)],
                "requests_at_most": self.ceiling,
                "cost_at_most": None if self.cost_at_most is None else round(self.cost_at_most, 6)}

    def _per_request(self) -> float:
        return self.prompt_tokens / self.requests if self.requests else 0.0


@dataclass
class Estimate:
    pipeline: str
    rows: list[Row]
    how: list[str]
    roles: dict = field(default_factory=dict)  # role -> {"tokens": how counted, "prices": ...}

    def to_dict(self) -> dict[str, Any]:
        total = {"requests": [sum(math.floor(r.requests_low) for r in self.rows),
                              sum(math.ceil(r.requests_high) for r in self.rows)],
                 "requests_if_all_survive": sum(r.requests for r in self.rows),
                 "requests_at_most": sum(r.ceiling for r in self.rows)}
        costs = [r for r in self.rows if r.cost_low is not None]
        total["cost"] = ([round(sum(r.cost_low for r in costs), 6), round(sum(r.cost_high for r in costs), 6)]
                         if costs else None)
        total["cost_at_most"] = round(sum(r.cost_at_most for r in costs), 6) if costs else None
        return {"pipeline": self.pipeline, "steps": [r.to_dict() for r in self.rows],
                "total": total, "roles": self.roles, "how": self.how}

    def text(self) -> str:
        data = self.to_dict()
        header = ("step", "role", "samples", "requests if all pass", "requests", "at most",
                  "prompt tokens", "completion tokens", "cost", "cost at most")
        lines = [header]
        for row in data["steps"]:
            lines.append((row["step"], row["role"], str(row["samples"]),
                          str(row["requests_if_all_survive"]), _span(row["requests"]),
                          f"{row['requests_at_most']:,}", _span(row["prompt_tokens"]),
                          _span(row["completion_tokens"]), _money(row["cost"]),
                          _money(row["cost_at_most"])))
        total = data["total"]
        lines.append(("total", "", "", str(total["requests_if_all_survive"]), _span(total["requests"]),
                      f"{total['requests_at_most']:,}", "", "", _money(total["cost"]),
                      _money(total["cost_at_most"])))
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        table = ["  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                           for i, (cell, width) in enumerate(zip(line, widths))).rstrip()
                 for line in lines]
        return "\n".join([f"Estimate for {self.pipeline} (nothing was sent):", "", *table, "",
                          *(f"- {line}" for line in self.how)]) + "\n"


def _span(pair) -> str:
    low, high = pair
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _money(pair) -> str:
    if pair is None:
        return "no price"
    if not isinstance(pair, list):
        return f"${pair:.4f}"
    low, high = pair
    return f"${low:.4f}" if low == high else f"${low:.4f}-${high:.4f}"


# -- the dry run ----------------------------------------------------------------------------------


ROLE_OPTION = "_atk_estimate_role"  # how the dry-run backend learns its role


class _Recorder:
    def __init__(self, counters, cachers=None):
        self.steps: dict[str, dict] = {}  # step -> {"role", "samples"}, in run order
        # (step, role) -> [n, tokens, ceiling, cache read tokens, cache write tokens]
        self.requests: dict[tuple[str, str], list] = {}
        self.counters = counters  # role -> TokenCounter
        self.cachers = cachers or {}  # role -> (backend class, options): whose cache_prefixes tell
        self.seen: dict[str, set] = {}  # role -> the prefixes its provider would have cached

    def cached(self, role: str, messages) -> tuple[int, int]:
        """Of a chat request's prompt tokens, those its provider's cache would give (a prefix
        asked before) and take (a new one long enough to be cached)."""
        found = self.cachers.get(role)
        if found is None:
            return 0, 0
        backend, options = found
        try:
            prefixes = backend.cache_prefixes([dict(m) for m in messages], **options)
        except Exception:  # a backend that cannot tell is counted as caching nothing
            return 0, 0
        counter, seen = self.counters[role], self.seen.setdefault(role, set())
        read = longest = 0
        for prefix, minimum in prefixes or ():
            tokens = sum(counter.count(str(m.get("content") or "")) + MESSAGE_OVERHEAD for m in prefix)
            if tokens < minimum:
                continue
            key = json.dumps(prefix, sort_keys=True)
            if key in seen:
                read = max(read, tokens)
            seen.add(key)
            longest = max(longest, tokens)
        return read, max(0, longest - read)


class DryRunBackend(Backend):
    """Answers every request at once with a placeholder that fits its schema, counting its
    prompt's tokens; sends nothing."""

    name = "dry-run"

    def __init__(self, **options):
        self.role = options.pop(ROLE_OPTION, "?")
        super().__init__(**options)
        self._recorder = _recorder.get()

    @classmethod
    def vet_options(cls, **options) -> None:  # the real backend's were checked already
        return None

    async def chat(self, messages, *, json_schema=None, extra=None, **sampling) -> Response:
        counter = self._counter()
        tokens = sum(counter.count(str(m.get("content") or "")) + MESSAGE_OVERHEAD for m in messages)
        cached = self._recorder.cached(self.role, messages)
        return self._answer(tokens, json.dumps(messages, sort_keys=True), json_schema, sampling, cached)

    async def complete(self, prompt, *, json_schema=None, extra=None, **sampling) -> Response:
        return self._answer(self._counter().count(prompt), prompt, json_schema, sampling)

    def identity(self) -> dict[str, Any]:  # roles apart: each asks its own questions
        return {"backend": self.name, "model": self.role, "endpoint": None}

    def _counter(self):
        return self._recorder.counters[self.role]

    def _answer(self, tokens, seed_text, json_schema, sampling, cached=(0, 0)) -> Response:
        key = (_step.get(), self.role)
        entry = self._recorder.requests.setdefault(key, [0, 0, 0, 0, 0])
        entry[0] += 1
        entry[1] += tokens
        entry[2] += sampling.get("max_tokens") or ASSUMED_COMPLETION_MAX
        entry[3] += cached[0]
        entry[4] += cached[1]
        if json_schema is None:
            text = placeholder_text(seed_text)
        else:
            text = json.dumps(value_for_schema(json_schema, text=lambda path: placeholder_text(seed_text, path)))
        return Response(text=text, finish_reason="stop", usage=Usage(tokens, 0))


class EstimateExecutor(Executor):
    """The local executor, noting which step each request belongs to and how many samples
    each step was given."""

    def __init__(self, **_options):
        self._local = LocalExecutor()

    async def run(self, task, samples, *, on_done=None):
        recorder = _recorder.get()
        token = _step.set(task.name)
        try:
            results = await self._local.run(task, samples, on_done=on_done)
        finally:
            _step.reset(token)
        entry = recorder.steps.setdefault(task.name, {"role": task.role, "samples": 0, "ceiling": 0,
                                                      "floor": 0})
        entry["samples"] += len(samples)
        step = task.step
        votes = getattr(step, "votes", 1)
        entry["ceiling"] += len(samples) * step.max_attempts * votes
        if hasattr(step, "threshold"):  # a vote stops as soon as its outcome is certain
            needed = max(1, -(-int(step.threshold * votes * 1000) // 1000))
            entry["floor"] += len(samples) * min(needed, votes - needed + 1)
        else:
            entry["floor"] += len(samples)
        return results


class _DryRegistry:
    """The run's registry, with the dry-run backend in every role and the estimate's executor."""

    def __init__(self, registry):
        self._registry = registry

    def backend(self, name):
        return DryRunBackend

    def executor(self, name):
        return EstimateExecutor

    def __getattr__(self, name):
        return getattr(self._registry, name)


class PassEverything(GatePolicy):
    """The dry run's policy: every placeholder answer passes every gate and verdict; one that
    does not even parse is the estimate's limit, said in one line."""

    def gate(self, gate, *args):
        return None

    def verdict(self, decide, *args) -> bool:
        return True

    def unparsed(self, step: str, problem: str) -> str:
        raise PipelineError(f"step {step!r}: the estimate's placeholder answer does not parse"
                            f" ({problem}); it can estimate steps with a json_schema, or none")


def placeholder_text(seed: str, path: str = "") -> str:
    """A placeholder string that differs from request to request and field to field, so that
    no check takes two placeholders for duplicates."""
    import hashlib

    digest = hashlib.sha256(f"{seed}\0{path}".encode("utf-8")).hexdigest()
    return "placeholder " + " ".join(digest[i:i + 6] for i in range(0, 36, 6))


# -- the estimate ---------------------------------------------------------------------------------


def estimate(config, *, registry=None, model_overrides=(), executor=None) -> Estimate:
    """The estimate for ``config`` (see the module's docstring). Raises what ``plan``
    raises for a bad config; a pipeline that fails on placeholders is a ``PipelineError``."""
    from ..engine.plugins import get_registry
    from ..engine.runner import plan, run

    registry = registry or get_registry()
    ready = plan(config, registry=registry, model_overrides=model_overrides, executor=executor)
    previous = _previous(ready.output_dir, ready.pipeline.name)
    counters = {role: _counter_for(spec) for role, spec in ready.model_specs.items()}
    cachers, batched = _cachers(ready.model_specs, registry)
    recorder = _Recorder(counters, cachers)
    folder = Path(tempfile.mkdtemp(prefix="atk-estimate-"))
    dry_models = {role: {"backend": spec.backend, **spec.options, ROLE_OPTION: role,
                         "concurrency": max(spec.concurrency, 16), "max_retries": 0}
                  for role, spec in ready.model_specs.items()}
    dry = ready.config.with_changes(output_dir=str(folder / "output"), models=dry_models,
                                   executor="estimate")
    token = _recorder.set(recorder)
    try:
        result = run(dry, registry=_DryRegistry(registry), progress=["jsonl"], policy=PassEverything())
    finally:
        _recorder.reset(token)
        shutil.rmtree(folder, ignore_errors=True)
    if result.status != "done":
        raise PipelineError(f"the estimate's dry run of {ready.pipeline.name!r} failed: {result.error}")
    rows = _rows(recorder)
    how = _apply_rates(rows, previous, ready.model_specs, counters)
    how += _cache_how(rows, batched)
    roles = {role: {"tokens": counters[role].describe(),
                    "price_in": spec.price_in, "price_out": spec.price_out,
                    **({"price_cache_read": spec.price_cache_read, "price_cache_write": spec.price_cache_write}
                       if role in recorder.cachers else {})}
             for role, spec in ready.model_specs.items()}
    return Estimate(ready.pipeline.name, rows, how, roles)


def _cachers(specs, registry) -> tuple[dict, list]:
    """role -> (backend class, options) for the roles whose backend says what its provider
    caches, and the roles left out because they have ``batch: true`` (a batch's cache hits
    are the provider's best effort: the estimate cannot tell)."""
    cachers, batched = {}, []
    for role, spec in sorted(specs.items()):
        try:
            backend = registry.backend(spec.backend)
        except Exception:
            continue
        method = getattr(backend, "cache_prefixes", None)
        if method is None or getattr(method, "__func__", None) is Backend.cache_prefixes.__func__:
            continue
        if spec.batch:
            batched.append(role)
        else:
            cachers[role] = (backend, dict(spec.options))
    return cachers, batched


def _cache_how(rows, batched) -> list[str]:
    """The sentence that says how cached prompt tokens were counted, when some were."""
    cached = {}
    for row in rows:
        read, write = cached.get(row.role, (0, 0))
        cached[row.role] = (read + row.cache_read_tokens, write + row.cache_write_tokens)
    roles = [role for role in sorted(cached) if any(cached[role])]
    how = []
    if roles:
        how.append("Prompt caching: of the prompt tokens if all survive, "
                   + "; ".join(f"{role} {cached[role][0]:,} read from the provider's cache and"
                               f" {cached[role][1]:,} written to it" for role in roles)
                   + " (each prefix the backend marks for caching, long enough to be cached, written"
                     " the first time and read after), priced at price_cache_read and"
                     " price_cache_write (price_in where unset). Requests sent at once before the"
                     " first has been answered can each write the same prefix, and a cache entry"
                     " unused for its time to live is gone: the cost can come out higher.")
    if batched and any(r.role in batched for r in rows):
        how.append(f"Roles with batch: true ({', '.join(batched)}): their prompts are counted"
                   " at price_in, as a batch's cache hits are the provider's best effort.")
    return how


def _counter_for(spec):
    """The role's own tokenizer when one is on this machine (a .gguf model file, or a model
    name transformers has a local copy of), else the estimate."""
    name = spec.options.get("model_path") or spec.options.get("model")
    counter = token_counter(name if isinstance(name, str) else None)
    return counter


def _prompt_price(row, spec) -> float:
    """A prompt token's price in the row, on average: the cached ones at the cache prices."""
    price_in = spec.price_in or 0
    if not row.prompt_tokens or not (row.cache_read_tokens or row.cache_write_tokens):
        return price_in
    read = price_in if spec.price_cache_read is None else spec.price_cache_read
    write = price_in if spec.price_cache_write is None else spec.price_cache_write
    uncached = row.prompt_tokens - row.cache_read_tokens - row.cache_write_tokens
    return (uncached * price_in + row.cache_read_tokens * read + row.cache_write_tokens * write) / row.prompt_tokens


def _rows(recorder) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    order = list(recorder.steps) + [OUTSIDE]
    for (step, role), (count, tokens, ceiling, read, write) in recorder.requests.items():
        row = rows.setdefault((step, role), Row(step, role))
        row.requests += count
        row.prompt_tokens += tokens
        row.completion_ceiling += ceiling
        row.cache_read_tokens += read
        row.cache_write_tokens += write
    for (step, role), row in rows.items():
        row.samples = recorder.steps.get(step, {}).get("samples", 0)
        row.ceiling = recorder.steps.get(step, {}).get("ceiling", row.requests)
        row.floor = min(row.requests, recorder.steps.get(step, {}).get("floor", row.requests))
    return sorted(rows.values(), key=lambda r: (order.index(r.step) if r.step in order else len(order),
                                                r.role))


def _previous(output_dir: Path, pipeline: str) -> dict | None:
    """The manifest of a finished earlier run of the same pipeline in the output folder."""
    path = Path(output_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("pipeline") != pipeline or \
            not isinstance(manifest.get("calls"), dict) or not manifest["calls"]:
        return None
    return manifest


def _apply_rates(rows, previous, specs, counters) -> list[str]:
    """Fill in each row's range; return the sentences that say how."""
    first = next((r for r in rows if r.step != OUTSIDE), None)
    how = ["A dry run of the pipeline on these inputs: each request answered at once with a"
           " placeholder, every answer taken as passing, so each sample went as far as it can;"
           " 'requests if all pass' is exact for a run in which every sample passes every step on"
           " its first attempt."]
    calls = (previous or {}).get("calls") or {}
    completion = {}
    for role, summary in ((previous or {}).get("models") or {}).items():
        answered = summary.get("requests_sent", 0) + summary.get("answers_from_store", 0)
        if answered:
            completion[role] = summary["usage_total"]["completion_tokens"] / answered
    how.append("'At most' is the most a run can ask: every sample reaching every step and using"
               " every attempt (and every vote); 'cost at most' adds answers as long as each"
               " request's max_tokens allows (where a request sets none,"
               f" {ASSUMED_COMPLETION_MAX} tokens are assumed). Requests the backend retries after"
               " a transport failure are not in it. A step whose answers are lists is counted with"
               " the schema's minItems (or one) items.")
    if previous:
        how.append(f"The ranges: survival and attempts of the previous run in the output folder"
                   f" (task {previous.get('task_id')}), scaled to these inputs,"
                   f" {PREVIOUS_SPREAD[0]:g}x to {PREVIOUS_SPREAD[1]:g}x (within 'at most');"
                   f" answers at least {PREVIOUS_SPREAD[0]:g}x as long as that run's on average,"
                   f" at most max_tokens.")
    else:
        how.append(f"The ranges, with no previous run to learn from: the first step's samples all"
                   f" go (a vote may stop early), a later step sees at least {ASSUMED_REACH:.0%} of"
                   f" its samples, up to 'at most'; answers are {ASSUMED_COMPLETION_MIN} tokens"
                   f" long at least, max_tokens at most.")
    how.append("Prompt tokens: the high end allows a prompt to come out longer at the server"
               f" than counted here ({PROMPT_MARGIN['estimate']:.0%} with the bytes/4 estimate,"
               f" {PROMPT_MARGIN['tokenizer']:.0%} with a tokenizer: chat templates, retry notes)."
               " Prompts that quote earlier answers are counted with placeholders in their place:"
               " their tokens, and the cost, can come out above the range when the answers are long.")
    base = calls.get(first.step) if first is not None else None
    for row in rows:
        ceiling = row.completion_ceiling / row.requests if row.requests else 0.0
        counter = counters.get(row.role)
        row.margin = PROMPT_MARGIN.get(getattr(counter, "method", "estimate"), PROMPT_MARGIN["estimate"])
        past = calls.get(row.step)
        if past and base and first and first.samples and base.get("samples") and row.samples \
                and past.get("samples"):
            # What share of the all-survive samples reached the step, and attempts per sample,
            # relative to the dry run's.
            reach = min(1.0, (past["samples"] / base["samples"]) / (row.samples / first.samples))
            attempts = (past["requests"] / past["samples"]) / (row.requests / row.samples)
            expected = row.requests * reach * max(attempts, 0.0)
            row.requests_low = min(expected * PREVIOUS_SPREAD[0], row.ceiling)
            row.requests_high = min(expected * PREVIOUS_SPREAD[1], row.ceiling)
        elif first and row.step == first.step:
            row.requests_low, row.requests_high = row.floor, row.ceiling
        else:
            row.requests_low, row.requests_high = row.floor * ASSUMED_REACH, row.ceiling
        low = completion[row.role] * PREVIOUS_SPREAD[0] if row.role in completion else ASSUMED_COMPLETION_MIN
        row.completion_low, row.completion_high = min(low, ceiling), ceiling
        spec = specs.get(row.role)
        if spec is not None and (spec.price_in is not None or spec.price_out is not None):
            per_prompt = row.prompt_tokens / row.requests if row.requests else 0.0
            most = per_prompt * (1 + row.margin)
            price_in, price_out = _prompt_price(row, spec) / 1e6, (spec.price_out or 0) / 1e6
            row.cost_low = row.requests_low * (per_prompt * price_in + row.completion_low * price_out)
            row.cost_high = row.requests_high * (most * price_in + row.completion_high * price_out)
            row.cost_at_most = row.ceiling * (most * price_in + ceiling * price_out)
    how.append("Tokens: " + "; ".join(f"{role}: {counters[role].describe()['detail']}"
                                      for role in sorted(counters)) + ".")
    how.append("Answers already in the output folder's store are not subtracted: a resumed run"
               " sends fewer.")
    return how
