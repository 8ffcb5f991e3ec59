"""The anthropic backend's transport: the anthropic SDK against its own HTTP transport, bare.

A FakeAnthropicServer runs as its own process (spending ``--cpu-ms`` of CPU per
answer, as a real front end does). In the same run, each client as a whole
process, ``--rounds`` times, median, sends ``--samples`` Messages requests
(a system prompt, a passage, a forced tool: what atk's steps send) at
``--concurrency``:

1. ``anthropic.AsyncAnthropic(...).messages.create`` (retries off), a semaphore;
2. the same requests as bytes over ``httpx2.AsyncClient`` (the SDK's own
   transport), the answer read with ``json``: what atk-backend-anthropic does;
3. ``atk_backend_anthropic``'s backend through the core's ``Model`` (retries,
   limits, schema check), with no store.

For each: client CPU milliseconds per request, requests per second, and the
seconds ``import`` takes; then what each install pulls in (distributions).
It needs the ``anthropic`` package in this venv for the first stack (and
atk-backend-anthropic for the third); a missing one is skipped, said so.

    python bench/anthropic_transport.py [--samples 2000] [--concurrency 32] [--rounds 3] [--cpu-ms 0.5]
"""

import argparse
import importlib.metadata
import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time

SYSTEM = "You write quiz questions about facts. Reply by calling the answer tool."
PASSAGE = ("Passage (from kilns.txt):\n\"\"\"\n" + " ".join(
    ["The lime kilns at Hartsop burned limestone from the quarry above the village."] * 20) + "\n\"\"\"\n")
SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
          "required": ["question", "answer"]}

CLIENT = textwrap.dedent('''
    import asyncio, json, resource, sys, time
    started = time.perf_counter()
    stack, url, samples, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    SYSTEM, PASSAGE, SCHEMA = json.loads(sys.argv[5])
    if stack == "sdk":
        import anthropic
    elif stack == "transport":
        import httpx2
    else:
        from atk_core.testing import make_model
    imported = time.perf_counter() - started

    def params(i):
        return {"model": "claude-bench", "max_tokens": 200,
                "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": PASSAGE, "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": f"Sentence: number {i}"}]}],
                "tools": [{"name": "answer", "description": "the answer", "input_schema": SCHEMA}],
                "tool_choice": {"type": "tool", "name": "answer"}}

    async def main():
        limit = asyncio.Semaphore(concurrency)
        if stack == "sdk":
            client = anthropic.AsyncAnthropic(base_url=url, api_key="bench", max_retries=0)
            async def one(i):
                async with limit:
                    message = await client.messages.create(**params(i))
                    return message.content[0].input, message.usage.cache_read_input_tokens
        elif stack == "transport":
            client = httpx2.AsyncClient(base_url=url + "/", headers={
                "x-api-key": "bench", "anthropic-version": "2026-10-21", "content-type": "application/json"},
                timeout=None, limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100))
            async def one(i):
                async with limit:
                    reply = await client.post("v1/messages", content=json.dumps(params(i)).encode())
                    message = json.loads(reply.content)
                    return message["content"][0]["input"], message["usage"]["cache_read_input_tokens"]
        else:
            model = make_model({"backend": "anthropic", "model": "claude-bench", "base_url": url,
                                "api_key": "bench", "concurrency": concurrency, "max_retries": 0})
            async def one(i):
                response = await model.chat([{"role": "system", "content": SYSTEM},
                                             {"role": "user", "content": PASSAGE + f"Sentence: number {i}"}],
                                            json_schema=SCHEMA, max_tokens=200)
                return response.parsed, response.usage.cache_read_tokens
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        begun = time.perf_counter()
        answers = await asyncio.gather(*(one(i) for i in range(samples)))
        elapsed = time.perf_counter() - begun
        after = resource.getrusage(resource.RUSAGE_SELF)
        assert all(a for a, _ in answers) and answers[-1][1] > 0, answers[-1]
        cpu_ms = ((after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)) * 1000
        print(json.dumps({"import_s": imported, "cpu_ms_per_request": cpu_ms / samples,
                          "requests_per_s": samples / elapsed}))

    asyncio.run(main())
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requires(name: str) -> list[str]:
    """The distributions an install of ``name`` brings, itself included."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        key = current.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            distribution = importlib.metadata.distribution(current)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(key)
        for requirement in distribution.requires or []:
            if "extra ==" in requirement:
                continue
            todo.append(requirement.split(";")[0].split("[")[0].split("<")[0].split(">")[0]
                        .split("=")[0].split("!")[0].split("~")[0].strip())
    return sorted(seen)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-ms", type=float, default=0.5)
    args = parser.parse_args()

    stacks = []
    for stack, module in (("sdk", "anthropic"), ("transport", "httpx2"), ("atk", "atk_backend_anthropic")):
        try:
            __import__(module)
            stacks.append(stack)
        except ImportError:
            print(f"({stack}: {module} is not installed here; skipped)")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "atk_core.testing.anthropic_server", "--port", str(port),
                               "--no-record", "--cpu-ms", str(args.cpu_ms), "--cache-min-tokens", "100"],
                              stdout=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()  # "listening on ..."
        url = f"http://127.0.0.1:{port}"
        payload = json.dumps([SYSTEM, PASSAGE, SCHEMA])
        figures = {stack: [] for stack in stacks}
        for _ in range(args.rounds):
            for stack in stacks:
                out = subprocess.run([sys.executable, "-c", CLIENT, stack, url, str(args.samples),
                                      str(args.concurrency), payload], capture_output=True, text=True,
                                     check=True, env=dict(os.environ, ATK_LOAD_PLUGINS=""
                                                          if stack != "atk" else "anthropic"))
                figures[stack].append(json.loads(out.stdout))
        print(f"{args.samples} requests at concurrency {args.concurrency}, server {args.cpu_ms} ms CPU each,"
              f" median of {args.rounds}:")
        print(f"{'stack':<12}{'client CPU ms/request':>24}{'requests/s':>12}{'import s':>10}")
        for stack, rounds in figures.items():
            median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            print(f"{stack:<12}{median['cpu_ms_per_request']:>24.2f}{median['requests_per_s']:>12.0f}"
                  f"{median['import_s']:>10.2f}")
        for name in ("anthropic", "httpx2"):
            found = requires(name)
            if found:
                print(f"{name} installs {len(found)} distributions: {', '.join(found)}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
