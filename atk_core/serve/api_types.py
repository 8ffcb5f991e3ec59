"""The types of ``atk serve``'s HTTP API: what each route takes and answers (its OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from .store import STATUSES

Status = Literal[STATUSES]


class Problem(BaseModel):
    """What every refused request answers: one line saying why."""

    detail: str = Field(description="One line, the same text `atk run` prints for a config mistake.")


class ServerInfo(BaseModel):
    version: str = Field(description="atk-core version of the server.")
    runs_dir: str = Field(description="Folder holding every run (config, log, output).")
    cwd: str = Field(description="Folder that relative paths in configs (input_dir...) start from.")
    token_required: bool


class PipelineInfo(BaseModel):
    name: str
    description: str
    distribution: Optional[str] = None
    version: Optional[str] = None


class Template(BaseModel):
    pipeline: str
    template: str = Field(description="The pipeline's config.yaml template, as `atk init` writes it.")


class ConfigText(BaseModel):
    config: str = Field(description="A run config as YAML text (`pipeline: NAME` and its fields).",
                        examples=["pipeline: factual-qa\ninput_dir: ./documents\n"])


class Validation(BaseModel):
    ok: bool
    pipeline: Optional[str] = Field(None, description="The pipeline the config runs, when ok.")
    error: Optional[str] = Field(None, description="The config's mistake, as `atk run` says it.")
    warnings: list[str] = Field(default_factory=list, description=(
        "What `atk run` would warn about but still run (a field that looks misspelt)."))


class RunSummary(BaseModel):
    id: str
    pipeline: str
    status: Status
    progress: Optional[float] = Field(None, description="0..1, as the pipeline last reported it.")
    message: Optional[str] = None
    created: float = Field(description="Unix seconds.")
    started: Optional[float] = None
    finished: Optional[float] = None
    exit_code: Optional[int] = None
    error: Optional[str] = Field(None, description="Why it failed: the last error line of its log.")
    attempts: int = Field(description="How many times it was launched (1 + resumes).")
    can_cancel: bool
    can_resume: bool


class StepCount(BaseModel):
    name: str
    inputs: int
    outputs: int
    dropped: dict[str, int] = Field(description="Dropped samples by reason.")
    notes: dict[str, int] = Field(default_factory=dict, description=(
        "What the step did that dropped nothing but is worth knowing, with counts."))


class ModelUse(BaseModel):
    role: str
    backend: Optional[str] = None
    model: Optional[str] = None
    requests_sent: int = 0
    answers_from_store: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Optional[float] = None
    projected_cost: Optional[float] = Field(None, description=(
        "While the run goes: the whole run's cost, projected from the cost so far over the"
        " progress (None without the role's prices, or too early to say)."))


class ManifestSummary(BaseModel):
    steps: list[StepCount]
    outputs: dict[str, int] = Field(description="Records per output file.")
    primary_output: Optional[str] = None
    kinds: dict[str, str] = Field(default_factory=dict, description=(
        "What each output its pipeline declares holds, in words (\"SFT conversations"
        " (messages)\", \"preference pairs\", \"plain records\")."))
    wall_seconds: Optional[float] = None
    models: list[ModelUse]


class OutputFile(BaseModel):
    path: str = Field(description="Relative to the run's output folder.")
    size: int
    modified: float


class EvalScore(BaseModel):
    """How many of a set of exam questions a model answered right."""

    correct: int = Field(ge=0)
    total: int = Field(ge=0)
    accuracy: Optional[float] = Field(None, ge=0, le=1, description="correct / total; None when total is 0.")
    interval: Optional[tuple[float, float]] = Field(None, description=(
        "The accuracy's 95 % interval (Wilson), low and high, 0..1."))


class JudgeScore(EvalScore):
    agrees_with_rule: Optional[float] = Field(None, ge=0, le=1, description=(
        "The share of answers where the judge's verdict is the rule's."))


class EvalResult(EvalScore):
    """One model's answers to the exam, closed or open book: scored by ``atk eval``'s rule."""

    name: str = Field(description="The model's name in the eval (`--model NAME=...`).")
    model: Optional[str] = Field(None, description="Its backend and model, `backend:model`.")
    book: str = Field(description="closed (the question only) or open (with its source passage).")
    seen: EvalScore = Field(description="On the facts the run's training data taught.")
    held_out: EvalScore = Field(description="On the facts the run held out of its training data.")
    judge: Optional[JudgeScore] = Field(None, description=(
        "The judge model's verdicts (`atk eval --judge`), beside the rule's, if it had one."))


class Eval(BaseModel):
    """An ``atk eval`` of the run's exam (an ``eval.json`` in a folder of the run's output
    folder), or the run itself when it is an eval."""

    name: str = Field(description="The folder holding it, relative to the run's output folder"
                                  " (`eval` unless `atk eval --output` chose another); empty when"
                                  " the run is itself an eval (pipeline exam-eval).")
    exam: Optional[str] = Field(None, description="The exam file it asked.")
    questions: int = Field(ge=0, description="How many questions the exam has.")
    seen: int = Field(ge=0, description="How many of them are about facts the training data taught.")
    held_out: int = Field(ge=0, description="How many are about facts held out of it.")
    books: list[str] = Field(description="closed, and open with `--open-book`.")
    rule: Optional[str] = Field(None, description="The rule that scored every answer.")
    results: list[EvalResult] = Field(description="Per model and book, models in the eval's order.")


class RunDetail(RunSummary):
    config: str = Field(description="The config that runs, secrets redacted.")
    output_dir: str
    pid: Optional[int] = None
    manifest: Optional[ManifestSummary] = Field(None, description="From manifest.json, once written.")
    usage: list[ModelUse] = Field(default_factory=list, description=(
        "Per model role, the requests, tokens and cost of the run so far, from its latest"
        " progress event (the manifest has the final figures)."))
    files: list[OutputFile]
    evals: list[Eval] = Field(default_factory=list, description=(
        "The `atk eval`s of the run's exam: each `eval.json` in a folder of its output folder"
        " (`eval/` first); one that cannot be read is left out."))


class LogTail(BaseModel):
    text: str
    size: int = Field(description="Size of the whole log in bytes.")
    truncated: bool = Field(description="Whether text is only the end of the log.")


class Records(BaseModel):
    file: str = Field(description="The JSON-lines output file, relative to the run's output folder.")
    total: int = Field(description="How many records the file holds.")
    offset: int = Field(description="The index of the first record given.")
    records: list[Any] = Field(description="The records from offset on: JSON values (a line that is"
                                           " not JSON comes as its text).")


class Event(BaseModel):
    seq: int
    kind: str = Field(description="start, progress, finish, fail (from the run); queued, started,"
                                  " resumed, done, failed, cancelled, interrupted (from the server).")
    progress: Optional[float] = None
    message: Optional[str] = None
    time: float
