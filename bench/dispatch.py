"""Dispatch: atk's whole request path against the bare openai client, on a server that spends CPU.

A local OpenAI-compatible server runs as its own process and spends
``--cpu-ms`` of CPU on every answer besides parsing the request and building
the JSON reply, as a real server's front end does (tokenizing, templating),
so that the client's own CPU per request competes with something, as it does
on a 2-core machine against a real server. In the same run, each stack as a
whole process (``python`` started, imports, the run, exit), ``--rounds``
times, median:

1. the bare ``openai.AsyncOpenAI`` client, a semaphore at ``--concurrency``;
2. ``atk run`` of a one-step pipeline (PipelineStep, store, progress) over the
   same number of one-step chat requests at the same concurrency;
3. curator and distilabel, when they are installed in this venv;

and for each: requests per second over the whole process and over its run
phase, and the client process's CPU milliseconds per request. Then:

4. re-running the finished atk run: requests sent and time taken;
5. peak memory (max RSS) of an atk run over ``--memory-samples`` samples, in
   a fresh process, beside the bare loop's over the same number;
6. with ``--profile``: where atk's client CPU goes per request, by part of
   the request path (cProfile of one in-process run, own time summed by
   module).

    python bench/dispatch.py [--samples 3000] [--concurrency 64] [--rounds 3] [--cpu-ms 1.0]

Targets: atk's whole-process throughput at least 1.0x the bare client's, its
client CPU per request below the bare client's; the re-run sends 0 requests;
peak memory of the 100,000-sample run under 500 MB.
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

PIPELINE = '''
import os
from atk_core import hookimpl, Pipeline, PipelineStep
from atk_core.toolkit.files import atomic_write_jsonl

ASK = PipelineStep(name="ask", prompt="ask", model="large", max_attempts=1)

async def ask_all(*, count, output_dir, task_id=None, **kwargs):
    samples = [{"id": f"s{i}", "question": f"What is {i} squared?"} for i in range(count)]
    results = await ASK.run(samples)
    atomic_write_jsonl(os.path.join(output_dir, "answers.jsonl"),
                       [{"id": r.sample_id, "answer": r.value} for r in results if r.ok])

@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="bench-dispatch", function=ask_all))
'''

BARE = '''
import asyncio, sys, time, resource
import openai

async def main(url, samples, concurrency):
    client = openai.AsyncOpenAI(api_key="none", base_url=url, max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i):
        async with semaphore:
            completion = await client.chat.completions.create(
                model="fake", messages=[{"role": "user", "content": f"What is {i} squared?"}])
            return completion.choices[0].message.content

    start = time.perf_counter()
    answers = await asyncio.gather(*(one(i) for i in range(samples)))
    seconds = time.perf_counter() - start
    await client.close()
    assert len(answers) == samples and all(answers)
    return seconds

seconds = asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''

ATK = '''
import sys, resource
from atk_core.engine.config import load_config
from atk_core.engine.runner import run
result = run(load_config(sys.argv[1]))
assert result.exit_code == 0, result.error
print(result.seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''

CURATOR = '''
import sys, time, resource, os, tempfile
os.environ.setdefault("OPENAI_API_KEY", "none")
# curator caches answers on disk by default: every round must ask the server.
os.environ["CURATOR_DISABLE_CACHE"] = "true"
os.environ["CURATOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="curator-")
# curator counts tokens with tiktoken, which downloads its vocabulary at run time: there is no
# network here, so a bytes / 4 count stands in (cheaper than the real one: curator's favour).
import tiktoken

class _Estimate:
    name = "estimate"
    def encode(self, text, *args, **kwargs):
        return [0] * (len(text.encode()) // 4 + 1)

tiktoken.get_encoding = lambda *args, **kwargs: _Estimate()
tiktoken.encoding_for_model = lambda *args, **kwargs: _Estimate()
from bespokelabs import curator

class Ask(curator.LLM):
    def prompt(self, row):
        return row["question"]
    def parse(self, row, response):
        return {"answer": response}

url, samples, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = Ask(model_name="fake", backend="openai",
          backend_params={"base_url": url, "api_key": "none", "max_requests_per_minute": 10**7,
                          "max_tokens_per_minute": 10**9, "max_concurrent_requests": concurrency,
                          "require_all_responses": False})
start = time.perf_counter()
llm([{"question": f"What is {i} squared?"} for i in range(samples)])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''

DISTILABEL = '''
import sys, time, resource
from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration

url, samples, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Pipeline(name="bench-dispatch") as pipeline:
    load = LoadDataFromDicts(data=[{"instruction": f"What is {i} squared?"} for i in range(samples)],
                             batch_size=concurrency)
    ask = TextGeneration(llm=OpenAILLM(model="fake", base_url=url, api_key="none", max_retries=0),
                         input_batch_size=concurrency)
    load >> ask
start = time.perf_counter()
pipeline.run(use_cache=False)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cpu_ms: float, delay: float = 0.0):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "atk_core.testing.openai_server", "--port", str(port), "--no-record",
         "--cpu-ms", str(cpu_ms), "--delay", str(delay)], stdout=subprocess.PIPE, text=True)
    process.stdout.readline()  # "listening on ..."
    return process, f"http://127.0.0.1:{port}/v1"


def requests_seen(url):
    with urllib.request.urlopen(url + "/stats") as response:
        return json.load(response)["requests"]


def make_site(root: Path) -> Path:
    package = root / "site" / "bench_dispatch_pipeline"
    (package / "prompts").mkdir(parents=True)
    (package / "__init__.py").write_text(PIPELINE)
    (package / "prompts" / "ask.yaml").write_text("- role: user\n  content: '{question}'\n")
    info = root / "site" / "bench_dispatch_pipeline-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-dispatch\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[atk]\nbench = bench_dispatch_pipeline\n")
    return root / "site"


def atk_config(url, samples, concurrency, output_dir: Path) -> Path:
    config = output_dir.parent / f"{output_dir.name}.yaml"
    config.write_text(textwrap.dedent(f"""\
        pipeline: bench-dispatch
        count: {samples}
        output_dir: {output_dir}
        progress: [jsonl]
        models:
          large: {{backend: openai, model: fake, base_url: '{url}', concurrency: {concurrency}}}
    """))
    return config


def whole_process(code: str, args, env=None) -> dict:
    """Run ``code`` as a fresh Python process; its wall time, run phase, CPU and peak memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    run_phase, peak_kb = done.stdout.split()[-2:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "run": float(run_phase), "cpu": cpu, "peak_mb": int(peak_kb) / 1024}


def installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is not there either
        return False


def profile(site: Path, url: str, samples: int, concurrency: int, root: Path) -> list[tuple[str, float]]:
    """CPU seconds of one in-process atk run by part of the request path (own time per module)."""
    code = textwrap.dedent("""
        import cProfile, pstats, sys, json
        from atk_core.engine.config import load_config
        from atk_core.engine.runner import run
        profiler = cProfile.Profile()
        profiler.enable()
        result = run(load_config(sys.argv[1]))
        profiler.disable()
        assert result.exit_code == 0, result.error
        stats = pstats.Stats(profiler)
        rows = [(f if f != "~" else name, t) for (f, _, name), (_, _, t, _, _) in stats.stats.items()]
        print(json.dumps(rows))
    """)
    config = atk_config(url, samples, concurrency, root / "profiled")
    env = dict(os.environ, PYTHONPATH=str(site))
    done = subprocess.run([sys.executable, "-c", code, str(config)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    parts = {  # own time of a builtin (C) function is counted by its name
        "store (SQLite)": ("store.py", "sqlite3"),
        "HTTP transport (httpx, h11, sockets)": ("httpx", "httpcore", "h11", "ssl", "socket", "selectors",
                                                 "epoll", "'send'", "'recv'", "_SelectorSocketTransport"),
        "asyncio event loop": ("asyncio",),
        "JSON (requests, answers, canonical keys)": ("json",),
        "request keys (canonical form, sha256)": ("models/model.py", "hashlib", "sha256"),
        "prompt rendering": ("prompts.py", "string"),
        "schema checks": ("schemas.py", "jsonschema"),
        "steps (PipelineStep, streaming)": ("steps.py",),
        "openai backend": ("models/openai.py",),
        "progress events": ("progress.py", "reporters.py"),
    }
    totals = {name: 0.0 for name in parts}
    totals["other"] = 0.0
    others: dict[str, float] = {}
    for filename, seconds in json.loads(done.stdout.strip().splitlines()[-1]):
        for name, marks in parts.items():
            if any(mark in filename for mark in marks):
                totals[name] += seconds
                break
        else:
            totals["other"] += seconds
            where = filename.split("site-packages/")[-1].split("/python3.11/")[-1]
            others[where] = others.get(where, 0.0) + seconds
    largest = sorted(others.items(), key=lambda item: -item[1])[:4]
    totals = sorted(totals.items(), key=lambda item: -item[1])
    return [(f"{name} ({', '.join(w for w, _ in largest)}...)" if name == "other" else name, t)
            for name, t in totals]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-ms", type=float, default=1.0,
                        help="CPU milliseconds the server spends on each answer")
    parser.add_argument("--memory-samples", type=int, default=100_000,
                        help="samples for the peak-memory run (0 to skip)")
    parser.add_argument("--profile", action="store_true", help="where atk's client CPU goes")
    args = parser.parse_args()
    server, url = start_server(args.cpu_ms)
    n, c = args.samples, args.concurrency
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            site = make_site(root)
            atk_env = dict(os.environ, PYTHONPATH=str(site))
            stacks = {"bare openai client": lambda r: whole_process(BARE, [url, n, c]),
                      "atk run": lambda r: whole_process(ATK, [atk_config(url, n, c, root / f"run{r}")], atk_env)}
            if installed("bespokelabs.curator"):
                stacks["curator"] = lambda r: whole_process(CURATOR, [url, n, c])
            if installed("distilabel"):
                stacks["distilabel"] = lambda r: whole_process(DISTILABEL, [url, n, c])
            whole_process(BARE, [url, 200, c])  # warm the server and the disk cache up
            results = {name: [] for name in stacks}
            for round_ in range(args.rounds):  # interleaved, so drift hits every stack alike
                for name, measure in stacks.items():
                    results[name].append(measure(round_))
            print(f"{n} one-step chat requests, concurrency {c}, server spends {args.cpu_ms:g} ms CPU per"
                  f" answer, median of {args.rounds} rounds, each stack a whole process")
            print(f"{'':20} {'whole req/s':>12} {'run req/s':>10} {'client CPU ms/req':>18} {'x bare':>7}")
            median = {name: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
                      for name, rounds in results.items()}
            bare = median["bare openai client"]
            for name, m in median.items():
                print(f"{name:20} {n / m['wall']:12.0f} {n / m['run']:10.0f} {1000 * m['cpu'] / n:18.2f}"
                      f" {bare['wall'] / m['wall']:7.2f}")
            for missing in ("curator", "distilabel"):
                if missing not in median:
                    print(f"{missing:20} not installed in this venv")
            print("targets: atk whole-process x bare >= 1.00; atk client CPU per request below the bare"
                  " client's")

            before = requests_seen(url)
            again = whole_process(ATK, [atk_config(url, n, c, root / "run0")], atk_env)
            print(f"re-run of a finished run: {requests_seen(url) - before} requests,"
                  f" {again['wall']:.2f}s whole process (target 0 requests)")
            if args.memory_samples:
                m = args.memory_samples
                atk_mem = whole_process(ATK, [atk_config(url, m, c, root / "memory")], atk_env)
                bare_mem = whole_process(BARE, [url, m, c])
                print(f"peak memory, {m} samples: atk {atk_mem['peak_mb']:.0f} MB (target < 500),"
                      f" bare client with gather {bare_mem['peak_mb']:.0f} MB")
            if args.profile:
                print(f"where atk's client CPU goes ({n} requests, cProfile own time, ms per request):")
                for part, seconds in profile(site, url, n, c, root):
                    print(f"  {part:45} {1000 * seconds / n:6.3f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
