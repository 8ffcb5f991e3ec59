"""Dispatch overhead: atk's whole request path versus a bare openai client.

Against a local OpenAI-compatible server that answers instantly (run as its
own process), in the same run:

1. a bare ``openai.AsyncOpenAI`` loop with a semaphore at concurrency 64;
2. ``atk run`` of a one-step pipeline (PipelineStep, store, progress) over the
   same number of samples at the same concurrency;
3. re-running the finished atk run: requests sent and time taken;
4. peak memory (max RSS) of an atk run over 100,000 samples, in a fresh
   process, beside the bare loop's over the same number.

    python bench/dispatch.py [--samples 5000] [--concurrency 64] [--memory-samples 100000]

Targets: atk reaches at least 0.9 of the bare client's throughput; the re-run
sends 0 requests in under 5% of the first run's time.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
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
from atk_core.files import atomic_write_jsonl

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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "atk_core.testing.openai_server", "--port", str(port), "--no-record"],
        stdout=subprocess.PIPE, text=True)
    process.stdout.readline()  # "listening on ..."
    return process, f"http://127.0.0.1:{port}/v1"


def requests_seen(url):
    with urllib.request.urlopen(url + "/stats") as response:
        return json.load(response)["requests"]


def make_site(root: Path) -> Path:
    package = root / "site" / "bench_dispatch_pipeline"
    (package / "prompts").mkdir(parents=True)
    (package / "__init__.py").write_text(PIPELINE)
    (package / "prompts" / "ask.yaml").write_text(
        "- role: user\n  content: '{question}'\n")
    info = root / "site" / "bench_dispatch_pipeline-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-dispatch\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[atk]\nbench = bench_dispatch_pipeline\n")
    return root / "site"


async def bare_client(url, samples, concurrency):
    import openai

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
    assert len(answers) == samples
    return seconds


def atk_run(site, url, samples, concurrency, output_dir):
    config = output_dir.parent / f"{output_dir.name}.yaml"
    config.write_text(textwrap.dedent(f"""\
        pipeline: bench-dispatch
        count: {samples}
        output_dir: {output_dir}
        progress: [jsonl]
        models:
          large: {{backend: openai, model: fake, base_url: '{url}', concurrency: {concurrency}}}
    """))
    env = dict(os.environ, PYTHONPATH=str(site))
    code = ("import sys, time, resource\n"
            "from atk_core.config import load_config\nfrom atk_core.runner import run\n"
            "result = run(load_config(sys.argv[1]))\n"
            "assert result.exit_code == 0, result.error\n"
            "print(result.seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code, str(config)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1]) / 1024  # seconds of the run, peak MB


def bare_memory(url, samples, concurrency):
    code = ("import asyncio, sys, resource\nsys.path.insert(0, sys.argv[1])\n"
            "from dispatch import bare_client\n"
            "asyncio.run(bare_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), url, str(samples),
                          str(concurrency)], check=True, capture_output=True, text=True).stdout
    return int(out) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--memory-samples", type=int, default=100_000,
                        help="samples for the peak-memory run (0 to skip)")
    args = parser.parse_args()
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            site = make_site(Path(tmp))
            asyncio.run(bare_client(url, 200, args.concurrency))  # warm the server up

            bare = asyncio.run(bare_client(url, args.samples, args.concurrency))
            before = requests_seen(url)
            first, _ = atk_run(site, url, args.samples, args.concurrency, Path(tmp) / "run")
            sent_first = requests_seen(url) - before
            rerun, _ = atk_run(site, url, args.samples, args.concurrency, Path(tmp) / "run")
            sent_rerun = requests_seen(url) - before - sent_first

            print(f"samples {args.samples}, concurrency {args.concurrency}, server answers instantly")
            print(f"bare openai client : {args.samples / bare:8.0f} requests/s ({bare:.2f}s)")
            print(f"atk run            : {args.samples / first:8.0f} requests/s ({first:.2f}s,"
                  f" {sent_first} requests)")
            print(f"ratio atk / bare   : {bare / first:8.2f}   (target >= 0.90)")
            print(f"re-run of finished : {rerun:8.2f}s, {sent_rerun} requests,"
                  f" {100 * rerun / first:.1f}% of the first run (target 0 requests, < 5%)")
            if args.memory_samples:
                _, atk_mb = atk_run(site, url, args.memory_samples, args.concurrency,
                                    Path(tmp) / "memory")
                bare_mb = bare_memory(url, args.memory_samples, args.concurrency)
                print(f"peak memory, {args.memory_samples} samples: atk {atk_mb:.0f} MB,"
                      f" bare client with gather {bare_mb:.0f} MB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
