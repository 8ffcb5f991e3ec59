"""Scale: the ray executor with 1, 2 and 4 workers, and its own cost beside the local executor.

1. **Scaling.** A local OpenAI-compatible server (its own process) answers
   every request after ``--latency`` seconds, and each worker may have
   ``--per-worker`` requests in flight (``worker_concurrency``): the shape of
   a cluster whose workers each serve a model, where one worker's capacity is
   the bottleneck. Throughput of a one-step run over ``--samples`` samples
   with 1, 2 and 4 workers, as a ratio to one worker in the same run; beside
   it the local executor with the same total in flight (the ceiling: one
   process, no cluster).
2. **Overhead.** On an instant server (no latency), the same run with the
   local executor and with the ray executor (2 workers, the role's
   concurrency split between them): requests per second, ray / local.

Throughput is taken over the run phase (from the step's first progress event
to its last, in the run's progress.jsonl), so Ray's start-up, paid once per
run, is reported apart. The cluster is a local one started here with
``ray start`` (loopback, ``--num-cpus`` 4) and stopped at the end.

    python bench/ray_workers.py [--samples 400] [--latency 0.2] [--per-worker 4] [--overhead-samples 2000]

Needs atk-executor-ray (``scripts/setup.sh`` installs it). Stops every Ray
process on the machine when it ends (``ray stop``).
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dispatch import free_port, make_site, start_server  # noqa: E402  (beside this file)

RAY = Path(sys.executable).parent / "ray"


def start_cluster(root: Path, cpus: int) -> tuple[str, dict]:
    token = root / "ray_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    subprocess.run([str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    f"--num-cpus={cpus}", "--object-store-memory=200000000",
                    "--include-dashboard=false", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True)
    return f"127.0.0.1:{port}", env


def run(root: Path, name: str, url: str, samples: int, concurrency: int, env: dict,
        executor=None) -> dict:
    output = root / name
    config = root / f"{name}.yaml"
    config.write_text(textwrap.dedent(f"""\
        pipeline: bench-dispatch
        count: {samples}
        output_dir: {output}
        progress: [jsonl]
        models:
          large: {{backend: openai, model: fake, base_url: '{url}', concurrency: {concurrency},
                   timeout: 60}}
    """) + (f"executor: {json.dumps(executor)}\n" if executor else ""))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "atk_core", "run", str(config)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    points = []  # (time, answers so far) from the step's progress events
    for line in (output / "progress.jsonl").read_text().splitlines():
        event = json.loads(line)
        message = event.get("message") or ""
        if message.startswith("ask: "):
            points.append((_seconds(event["time"]), int(message[5:].split("/")[0])))
    (t0, n0), (t1, n1) = points[0], points[-1]
    return {"wall": wall, "rate": (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0}


def _seconds(value) -> float:
    return value if isinstance(value, (int, float)) else datetime.fromisoformat(value).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--per-worker", type=int, default=4)
    parser.add_argument("--overhead-samples", type=int, default=2000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="atk-bench-scale-"))
    site = make_site(root)
    env_site = {"PYTHONPATH": str(site)}
    address, env = start_cluster(root, cpus=4)
    env = {**env, **env_site}
    slow, slow_url = start_server(0.0, delay=args.latency)
    instant, instant_url = start_server(0.0)
    try:
        print(f"scaling: {args.samples} one-step requests, {args.latency * 1000:.0f} ms per answer,"
              f" {args.per_worker} in flight per worker")
        print(f"{'stack':<34}{'answers/s':>10}{'× 1 worker':>12}{'whole run s':>13}")
        base = None
        for workers in (1, 2, 4):
            figures = run(root, f"ray{workers}", slow_url, args.samples, 256, env,
                          {"ray": {"address": address, "workers": workers,
                                   "worker_concurrency": args.per_worker}})
            base = base or figures["rate"]
            print(f"{'ray, ' + str(workers) + ' worker' + 's' * (workers > 1):<34}"
                  f"{figures['rate']:>10.1f}{figures['rate'] / base:>12.2f}{figures['wall']:>13.1f}")
        for workers in (1, 4):
            figures = run(root, f"local{workers}", slow_url, args.samples,
                          args.per_worker * workers, env)
            print(f"{'local, ' + str(args.per_worker * workers) + ' in flight':<34}"
                  f"{figures['rate']:>10.1f}{figures['rate'] / base:>12.2f}{figures['wall']:>13.1f}")

        print(f"\noverhead: {args.overhead_samples} one-step requests, instant server, concurrency 64")
        local = run(root, "overhead-local", instant_url, args.overhead_samples, 64, env)
        ray = run(root, "overhead-ray", instant_url, args.overhead_samples, 64, env,
                  {"ray": {"address": address, "workers": 2}})
        print(f"{'stack':<34}{'answers/s':>10}{'× local':>12}{'whole run s':>13}")
        for name, figures in (("local executor", local), ("ray executor, 2 workers", ray)):
            print(f"{name:<34}{figures['rate']:>10.1f}{figures['rate'] / local['rate']:>12.2f}"
                  f"{figures['wall']:>13.1f}")
    finally:
        for server in (slow, instant):
            server.terminate()
            server.wait()
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
