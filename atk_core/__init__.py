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
from .progress import ProgressEvent, set_progress
from .version import __version__

_LAZY = {
    # the run a pipeline is in, and pipelines run as parts of it
    "current_run": "context", "RunContext": "context", "run_part": "compose",
    "check_part": "compose", "part_fields": "compose", "part_outputs": "compose",
    # steps: the shared part of every LLM call
    "PipelineStep": "steps", "VoteStep": "steps", "StepResult": "steps",
    "StepEnvironment": "steps", "derive_seed": "seeds", "stream": "executors",
    # executors: where a step's samples run
    "Executor": "executors", "LocalExecutor": "executors", "StepTask": "executors",
    "NewAnswer": "executors", "make_backend": "plugins",
    "yes_no_schema": "steps",
    "PromptLibrary": "prompts", "Prompt": "prompts", "PromptError": "prompts",
    # what a run keeps
    "RunRecord": "manifest", "Store": "store",
    "atomic_write_bytes": "files", "atomic_write_text": "files", "atomic_write_json": "files",
    "atomic_write_jsonl": "files", "jsonl_text": "files",
    # documents and chunks
    "Document": "documents", "Unreadable": "documents", "read_documents": "documents",
    "html_to_text": "documents", "check_input_dir": "documents",
    "Chunk": "chunks", "chunk_id": "chunks", "chunk_document": "chunks",
    "chunk_documents": "chunks", "chunk_subset": "chunks", "chunk_folder": "chunks",
    "sentences": "chunks",
    # quality gates: checks of generated text that do not trust the model
    "Problem": "gates", "first_problem": "gates", "question_problem": "gates",
    "grounding_problem": "gates", "answer_fits_problem": "gates", "placeholder_problem": "gates", "copied_problem": "gates",
    "conversation_problem": "gates", "refers_to_source": "gates", "NearDuplicates": "gates",
    "chatter_problem": "gates",
    "content_words": "gates", "content_problem": "gates", "PairGates": "gates", "words": "gates",
    "STOPWORDS": "gates", "search_problem": "gates", "answer_sentence": "gates",
    # prose gates: free text a model writes (loops, garbled words, invented facts)
    "prose_problem": "prose", "repetition_problem": "prose", "unknown_word_problem": "prose",
    "invented_problem": "prose", "is_english_word": "prose",
    # question-answer pairs about a chunk's sentences
    "focus_sentences": "qa", "focus_samples": "qa", "question_step": "qa", "pair_of": "qa",
    "duplicate_questions": "qa", "question_id": "qa", "select_chunks": "selection",
    "chunk_filter": "selection",
    # output formats
    "sharegpt": "formats", "segments": "formats", "chatml": "formats",
    "Conversation": "formats", "conversation_row": "formats", "write_conversations": "formats",
    "preference_row": "formats", "write_records": "formats",
    # what a pipeline declares it writes
    "Output": "outputs",
    # counting tokens, with a local tokenizer or an estimate
    "TokenCounter": "tokens", "token_counter": "tokens",
    # declaring and checking values
    "Range": "checks", "AtLeast": "checks", "Above": "checks", "AtMost": "checks",
    "Between": "checks", "NonEmpty": "checks", "check_arguments": "checks",
    "check_value": "checks", "require_roles": "checks",
    "with_fields": "fields", "Documents": "fields", "Sampling": "fields",
    # model backends and roles
    "Backend": "models", "Request": "models", "Response": "models", "Usage": "models",
    "BackendError": "models", "RateLimited": "models", "TransientError": "models",
    "RequestError": "models", "FatalError": "models", "Model": "models", "ModelSpec": "models",
    "OpenAIBackend": "models.openai",
    "schema_problem": "schemas", "value_for_schema": "schemas",
}

__all__ = [
    "AtkError", "ConfigError", "PipelineError", "PluginError", "Pipeline", "ProgressEvent",
    "hookimpl", "hookspec", "set_progress", "__version__", *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"atk_core.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'atk_core' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
