"""atk: turn raw documents into LLM training datasets with pipelines that are plugins.

What this module exports (and ``atk_core.testing``, the test kit) is the
public API: plugins import these names and nothing else, and they stay.
Every other module is private and may change. Heavier parts (models, steps,
the runner) are imported on first use, so that ``import atk_core`` and
``atk --help`` stay fast.
"""

from .errors import AtkError, ConfigError, PipelineError, PluginError
from .hookspecs import hookimpl, hookspec
from .pipeline import Pipeline
from .engine.progress import ProgressEvent, set_progress
from .version import __version__

_LAZY = {
    # the run a pipeline is in, and pipelines run as parts of it
    "current_run": "engine.context", "RunContext": "engine.context", "run_part": "engine.compose",
    "vet_part": "engine.compose", "part_fields": "engine.compose", "part_outputs": "engine.compose",
    # steps: the shared part of every LLM call
    "PipelineStep": "engine.steps", "VoteStep": "engine.steps", "StepResult": "engine.steps",
    "StepEnvironment": "engine.steps", "derive_seed": "toolkit.seeds", "stream": "engine.executors", "all_or_first_error": "engine.executors",
    # executors: where a step's samples run
    "Executor": "engine.executors", "LocalExecutor": "engine.executors", "StepTask": "engine.executors",
    "WorkerTask": "engine.executors",
    "NewAnswer": "engine.executors", "make_backend": "engine.plugins",
    "yes_no_schema": "engine.steps",
    "PromptLibrary": "engine.prompts", "Prompt": "engine.prompts", "PromptError": "engine.prompts",
    # what a run keeps
    "RunRecord": "engine.manifest", "Store": "engine.store",
    "atomic_write_bytes": "toolkit.files", "atomic_write_text": "toolkit.files", "atomic_write_json": "toolkit.files",
    "JsonLines": "toolkit.files", "AtomicFile": "toolkit.files",
    "atomic_write_jsonl": "toolkit.files", "jsonl_text": "toolkit.files",
    # the exam a run sets aside, and scoring answers against its references
    "ExamSettings": "toolkit.exam", "Fact": "toolkit.exam", "choose_facts": "toolkit.exam",
    "facts_of_folders": "toolkit.exam", "redact": "toolkit.exam", "exam_step": "toolkit.exam",
    "TrainingQuestions": "toolkit.exam", "teaching": "toolkit.exam", "exam_row": "toolkit.exam",
    "make_exam": "toolkit.exam", "turns_of": "toolkit.exam", "without": "toolkit.exam",
    "score_answer": "toolkit.scoring", "wilson_interval": "toolkit.scoring",
    # documents and chunks
    "Document": "toolkit.documents", "Unreadable": "toolkit.documents", "read_documents": "toolkit.documents",
    "html_to_text": "toolkit.html", "check_input_dir": "toolkit.documents",
    # readers: a file's bytes to a document's text (plugins, atk_register_readers)
    "Reader": "toolkit.documents", "ReadError": "toolkit.documents", "DocumentText": "toolkit.documents",
    "Origin": "toolkit.documents", "read_folder": "toolkit.documents", "FolderReading": "toolkit.documents",
    "Chunk": "toolkit.chunks", "chunk_id": "toolkit.chunks", "chunk_document": "toolkit.chunks",
    "chunk_documents": "toolkit.chunks", "chunk_subset": "toolkit.chunks", "chunk_folder": "toolkit.chunks",
    "Corpus": "toolkit.chunks", "judge_chunks": "toolkit.selection",
    "ShardedRun": "toolkit.shards", "Shard": "toolkit.shards",
    "sentences": "toolkit.chunks",
    # quality gates: checks of generated text that do not trust the model
    "Problem": "toolkit.gates", "first_problem": "toolkit.gates", "question_problem": "toolkit.gates",
    "grounding_problem": "toolkit.gates", "answer_fits_problem": "toolkit.gates", "placeholder_problem": "toolkit.gates", "copied_problem": "toolkit.gates",
    "conversation_problem": "toolkit.gates", "refers_to_source": "toolkit.gates", "NearDuplicates": "toolkit.gates",
    "chatter_problem": "toolkit.gates",
    "content_words": "toolkit.gates", "content_problem": "toolkit.gates", "PairGates": "toolkit.gates", "words": "toolkit.gates",
    "STOPWORDS": "toolkit.gates", "search_problem": "toolkit.gates", "answer_sentence": "toolkit.gates",
    # prose gates: free text a model writes (loops, garbled words, invented facts)
    "prose_problem": "toolkit.prose", "repetition_problem": "toolkit.prose", "unknown_word_problem": "toolkit.prose",
    "invented_problem": "toolkit.prose", "is_english_word": "toolkit.prose",
    # question-answer pairs about a chunk's sentences
    "focus_sentences": "toolkit.qa", "focus_samples": "toolkit.qa", "question_step": "toolkit.qa", "pair_of": "toolkit.qa",
    "duplicate_questions": "toolkit.qa", "question_id": "toolkit.qa", "select_chunks": "toolkit.selection",
    "chunk_filter": "toolkit.selection",
    # output formats
    "sharegpt": "toolkit.formats", "segments": "toolkit.formats", "chatml": "toolkit.formats",
    "Conversation": "toolkit.formats", "conversation_row": "toolkit.formats", "write_conversations": "toolkit.formats",
    "preference_row": "toolkit.formats", "write_records": "toolkit.formats",
    # what a pipeline declares it writes
    "Output": "toolkit.outputs",
    # counting tokens, with a local tokenizer or an estimate
    "TokenCounter": "toolkit.tokens", "token_counter": "toolkit.tokens",
    # declaring and checking values
    "Range": "toolkit.constraints", "AtLeast": "toolkit.constraints", "Above": "toolkit.constraints", "AtMost": "toolkit.constraints",
    "Between": "toolkit.constraints", "NonEmpty": "toolkit.constraints", "enforce_constraints": "toolkit.constraints",
    "enforce_constraint": "toolkit.constraints", "require_roles": "toolkit.constraints",
    "with_fields": "toolkit.fields", "Documents": "toolkit.fields", "Sampling": "toolkit.fields",
    # model backends and roles
    "Backend": "models", "Request": "models", "Response": "models", "Usage": "models",
    "BackendError": "models", "RateLimited": "models", "TransientError": "models",
    "RequestError": "models", "FatalError": "models", "Model": "models", "ModelSpec": "models",
    "OpenAIBackend": "models.openai", "BatchState": "models.base", "HttpBackend": "models.http",
    "schema_problem": "toolkit.schemas", "value_for_schema": "toolkit.schemas",
}

__all__ = [
    "AtkError", "ConfigError", "PipelineError", "PluginError", "Pipeline", "ProgressEvent",
    "hookimpl", "hookspec", "set_progress", "__version__", *_LAZY,
]


# Old names, still importable for a while (with a DeprecationWarning): each now has one meaning.
_RENAMED = {"check_arguments": "enforce_constraints", "check_value": "enforce_constraint",
            "check_part": "vet_part"}


def __getattr__(name):
    if name in _RENAMED:
        import warnings

        warnings.warn(f"atk_core.{name} is now atk_core.{_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return __getattr__(_RENAMED[name])
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"atk_core.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'atk_core' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
