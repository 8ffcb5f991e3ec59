"""Two processes on the embedded model at once: how much they slow each other, by how
llama.cpp's threads are chosen and wait.

llama.cpp's threads spin while they wait. Two runs that each take every CPU make two
teams of spinning threads on the same cores, and slow each other far more than
twofold. Since issue 26 the llamacpp backend, with ``n_threads`` unset, takes its share
of the CPUs (divided among the processes running a model now, looked at before each
request; atk_backend_llamacpp/seats.py). This prints, per policy, the wall time of a
fixed workload (chat requests with a JSON schema, as the pipelines send) run alone and
run twice at once, so the baseline (alone) is measured in the same run.

Policies: ``default`` (n_threads unset: the share), ``threads:N`` (N threads, fixed:
``threads:2`` on two cores is what the default was before), ``PASSIVE`` and other
OMP_WAIT_POLICY values, ``spin:N`` (GOMP_SPINCOUNT=N).

Measured on this project's 2-core machine, 16 requests per process (seconds, alone /
two at once): every CPU, fixed (the old default) 11.1 / 64.0, 5.7x; one thread each
14.8 / 14.6; OMP_WAIT_POLICY=PASSIVE 20.6 / 17.9; GOMP_SPINCOUNT made it worse. The
share (the default now): see the README of atk-backend-llamacpp for the figures.

    python bench/threads.py [--requests 16] [--policies default,threads:2]
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
    parser.add_argument("--policies", default="default,threads:2")
    args = parser.parse_args()
    print(f"{args.requests} requests per process, {os.cpu_count()} CPUs")
    print(f"{'policy':16} {'alone':>8} {'two at once':>12} {'slowdown':>9}")
    for policy in args.policies.split(","):
        alone = timed(args.requests, 1, policy)
        both = timed(args.requests, 2, policy)
        print(f"{policy:16} {alone:7.1f}s {both:11.1f}s {both / alone:8.1f}x")


if __name__ == "__main__":
    main()
