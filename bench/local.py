"""Local generation throughput: atk's llamacpp backend versus llama-cpp-python itself.

In one process and one run, the same prompts with the same settings
(temperature 0, a fixed seed per prompt, the same max_tokens) are generated

1. through atk: ``atk_core.models.Model`` (the core's request path: request
   building, retry policy, timeout, concurrency limit, usage totals) over the
   ``llamacpp`` backend (its worker thread and lock, and its deterministic
   prompt evaluation, which reuses only identically evaluated pieces of the
   previous prompt), and
2. directly: ``llama_cpp.Llama.create_chat_completion`` (or
   ``create_completion``) on a Llama loaded with the same options, the way a
   script would call it, timed around that call alone.

The direct calls run on the thread atk calls llama.cpp from
(``call_in_llama_thread``): llama.cpp's OpenMP threads belong to the calling
thread, and two calling threads in one process make two teams of busy-waiting
threads that slow both sides down (about 100 -> 37 tokens/s on two cores).

Both are warmed up first, and the order alternates from prompt to prompt so
that neither side always runs on a warmer machine. Throughput is generated
tokens per second of wall time per request, summed over all requests.

Then the quickstart's main job — ``atk run`` of factual-qa over the bundled
sample documents with both roles on llamacpp, as ``scripts/quickstart.sh``
runs it — in a fresh process: its wall time and peak memory (max RSS).

    python bench/local.py [--rounds 3] [--max-tokens 64] [--mode both|chat|completion]
                          [--no-quickstart]

Target: atk reaches at least 0.95 of llama-cpp-python's tokens per second.
"""

import argparse
import asyncio
import os
import sys
import time

PROMPTS = [
    "Write a short paragraph about the history of the bicycle.",
    "Explain how rain forms, in a few sentences.",
    "Describe a busy market in the morning.",
    "Give some advice to someone learning to cook.",
    "Tell a short story about a lighthouse keeper.",
    "Explain why the sky is blue to a child.",
]
# Completion mode continues text, so its prompts are openings rather than requests.
COMPLETIONS = [
    "The history of the bicycle begins in",
    "Rain forms when",
    "In the morning, the market is",
    "The first thing every new cook should learn is",
    "The lighthouse keeper woke up and",
    "The sky is blue because",
]


def direct_call(llama, mode, prompt, seed, max_tokens):
    if mode == "chat":
        result = llama.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            temperature=0.0, seed=seed, max_tokens=max_tokens)
        text = result["choices"][0]["message"]["content"]
    else:
        result = llama.create_completion(prompt, temperature=0.0, seed=seed, max_tokens=max_tokens)
        text = result["choices"][0]["text"]
    return text, result["usage"]["completion_tokens"]


async def atk_call(model, mode, prompt, seed, max_tokens):
    if mode == "chat":
        response = await model.chat([{"role": "user", "content": prompt}],
                                    temperature=0.0, seed=seed, max_tokens=max_tokens)
    else:
        response = await model.complete(prompt, temperature=0.0, seed=seed, max_tokens=max_tokens)
    return response.text, response.usage.completion_tokens


async def measure(mode, rounds, max_tokens, prompts):
    import llama_cpp

    from atk_backend_llamacpp import LlamaCppBackend, call_in_llama_thread
    from atk_core.models import Model, parse_spec

    backend = LlamaCppBackend()
    model = Model(parse_spec("bench", {"backend": "llamacpp"}), backend)
    # The same file and loading options as the backend uses, in a Llama of its own.
    llama = call_in_llama_thread(llama_cpp.Llama, model_path=str(backend.model_path),
                                 verbose=False, **backend._shared.options)

    def direct(prompt, seed):
        def timed():
            started = time.perf_counter()
            text, tokens = direct_call(llama, mode, prompt, seed, max_tokens)
            return text, tokens, time.perf_counter() - started

        return call_in_llama_thread(timed)

    # Warm-up: load both, touch every weight page, fill caches.
    for seed in (0, 1):
        await atk_call(model, mode, prompts[0], seed, max_tokens)
        direct(prompts[0], seed)

    totals = {"atk": [0, 0.0], "direct": [0, 0.0]}
    same = 0
    calls = 0
    for round_number in range(rounds):
        for index, prompt in enumerate(prompts):
            seed = 1000 + index
            texts = {}
            order = ("atk", "direct") if (round_number + index) % 2 == 0 else ("direct", "atk")
            for side in order:
                if side == "atk":
                    started = time.perf_counter()
                    text, tokens = await atk_call(model, mode, prompt, seed, max_tokens)
                    seconds = time.perf_counter() - started
                else:
                    text, tokens, seconds = direct(prompt, seed)
                totals[side][0] += tokens
                totals[side][1] += seconds
                texts[side] = text
            calls += 1
            same += texts["atk"] == texts["direct"]
    await model.aclose()
    call_in_llama_thread(llama.close)
    return totals, same, calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the prompts (default 3)")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per answer (default 64)")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS),
                        help=f"how many of the {len(PROMPTS)} prompts to use (default all)")
    parser.add_argument("--mode", choices=("chat", "completion", "both"), default="both")
    parser.add_argument("--no-quickstart", action="store_true",
                        help="skip timing the quickstart run (about 4 minutes on 2 cores)")
    args = parser.parse_args()
    prompts = PROMPTS[: max(1, args.prompts)]
    modes = ("chat", "completion") if args.mode == "both" else (args.mode,)

    print(__doc__.split("\n\n")[0])
    print(f"model: bundled SmolLM2-135M-Instruct (Q4_1), threads: {len(os.sched_getaffinity(0))},"
          f" {len(prompts)} prompts x {args.rounds} rounds, max_tokens {args.max_tokens},"
          " temperature 0, fixed seeds; target ratio >= 0.95")
    worst = None
    for mode in modes:
        chosen = prompts if mode == "chat" else COMPLETIONS[: len(prompts)]
        totals, same, calls = asyncio.run(measure(mode, args.rounds, args.max_tokens, chosen))
        rates = {side: tokens / seconds for side, (tokens, seconds) in totals.items()}
        ratio = rates["atk"] / rates["direct"]
        worst = ratio if worst is None else min(worst, ratio)
        print(f"\n[{mode}]")
        for side, label in (("direct", "llama-cpp-python directly"), ("atk", "atk Model + llamacpp")):
            tokens, seconds = totals[side]
            print(f"  {label:<28} {rates[side]:7.1f} tok/s   ({tokens} tokens in {seconds:.1f}s)")
        print(f"  ratio atk/direct             {ratio:7.3f}   {'OK' if ratio >= 0.95 else 'BELOW TARGET'}")
        print(f"  identical answers            {same}/{calls}")
    if not args.no_quickstart:
        quickstart()
    return 0 if worst is not None and worst >= 0.95 else 1


def quickstart():
    """Time the quickstart's run in a child process; report wall time and peak RSS."""
    import resource
    import subprocess
    import tempfile

    atk = [sys.executable, "-m", "atk_core"]
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([*atk, "init", "factual-qa", "--samples"], cwd=work, check=True,
                       capture_output=True)
        started = time.perf_counter()
        result = subprocess.run([*atk, "run", "factual-qa.yaml", "--model", "small=llamacpp",
                                 "--model", "large=llamacpp", "--progress", "jsonl"],
                                cwd=work, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if result.returncode != 0:
            print(f"\n[quickstart] FAILED: {result.stderr.strip().splitlines()[-1]}")
            return
        import json

        outputs = json.loads(open(f"{work}/output/manifest.json").read())["outputs"]
    print("\n[quickstart: factual-qa on the sample documents, both roles on llamacpp]")
    print(f"  wall time                    {seconds:7.1f} s")
    print(f"  peak memory (max RSS)        {peak_mb:7.0f} MB")
    print(f"  outputs                      {outputs}")


if __name__ == "__main__":
    sys.exit(main())
