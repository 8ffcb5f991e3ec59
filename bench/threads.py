"""Two processes on the embedded model at once: how much they slow each other, by how
llama.cpp's threads wait.

A run on the embedded model (llamacpp backend) gives llama.cpp one thread per
CPU. Two such runs on a two-core machine make two teams of OpenMP threads
that, by default, spin while they wait, and slow each other far more than
twofold. This prints, for each waiting policy, the wall time of a fixed
workload (chat requests with a JSON schema, as the pipelines send) run alone
and run twice at once, so the baseline (alone) is measured in the same run.

Measured on this project's 2-core machine, 16 requests per process (seconds,
alone / two at once): all CPUs (the default) 11.1 / 64.0, 5.7x; one thread
each 14.8 / 14.6; OMP_WAIT_POLICY=PASSIVE 20.6 / 17.9; GOMP_SPINCOUNT made it
worse. The quickstart with one thread took 235 s instead of 165 s, which is
why the default stays at every CPU: a user who runs two at once sets
n_threads.

    python bench/threads.py [--requests 12] [--policies default,PASSIVE,spin:20000]

(``spin:N``: GOMP_SPINCOUNT=N, spin that many times before sleeping;
``threads:N``: N llama.cpp threads per process.)
"""

import argparse
import os
import subprocess
import sys
import time

WORKLOAD = r'''
import asyncio, sys
from atk_core.testing import make_model

async def main(count):
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else None
    model = make_model({"backend": "llamacpp", "concurrency": 1,
                        **({"n_threads": threads} if threads else {})})
    schema = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}
    for n in range(count):
        await model.chat([{"role": "user", "content": f"Write one question about the number {n}."}],
                         json_schema=schema, max_tokens=48, temperature=0.0, seed=n)
    await model.aclose()

asyncio.run(main(int(sys.argv[1])))
'''


def timed(count: int, copies: int, policy: str) -> float:
    env, extra = dict(os.environ), []
    if policy.startswith("threads:"):  # llama.cpp threads per process (default: one per CPU)
        extra = [policy.removeprefix("threads:")]
    elif policy.startswith("spin:"):  # spin this many times, then sleep (GNU OpenMP)
        env["GOMP_SPINCOUNT"] = policy.removeprefix("spin:")
    elif policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    started = time.monotonic()
    processes = [subprocess.Popen([sys.executable, "-c", WORKLOAD, str(count), *extra], env=env)
                 for _ in range(copies)]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"the workload failed (policy {policy})")
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--policies", default="default,PASSIVE")
    args = parser.parse_args()
    print(f"{args.requests} requests per process, {os.cpu_count()} CPUs")
    print(f"{'OMP_WAIT_POLICY':16} {'alone':>8} {'two at once':>12} {'slowdown':>9}")
    for policy in args.policies.split(","):
        alone = timed(args.requests, 1, policy)
        both = timed(args.requests, 2, policy)
        print(f"{policy:16} {alone:7.1f}s {both:11.1f}s {both / alone:8.1f}x")


if __name__ == "__main__":
    main()
