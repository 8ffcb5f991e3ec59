"""Scale: peak memory and time of factual-qa as the corpus grows, and what a re-run costs.

For each corpus size (MB of text, generated: the same kinds of documents
repeated with small changes, as a wiki or a ticket archive repeats itself),
``atk run`` of factual-qa in a subprocess against an instant OpenAI-compatible
server (FakeOpenAIServer on a thread of this process, answering as
``tests/passing_model.py`` does, so that pairs pass every gate), reading the
corpus a shard at a time (the default) and, as the baseline in the same run,
in one piece (``shard_bytes`` larger than the corpus: what every run did
before). Then, on the finished streamed run: ``atk run`` again (up to date:
nothing runs) and ``atk run --again`` (every answer replayed from the store).

Peak memory is the run process's own maximum resident set (``wait4``'s
``ru_maxrss``), the server's not included.

    python bench/scale.py [--sizes 4 40 400] [--baseline-up-to 40] [--replay-up-to 40]
                          [--ray-up-to 40] [--ray-only] [--full]

By default each chunk is asked one question and the model's own checks are
skipped (``--full``: the template's three questions, votes and checks, about
15 requests per chunk): the light run makes a 400 MB corpus take minutes, not
hours, and memory is what it is about. ``--ray-up-to``: the same streamed run
on a two-node local Ray cluster (``ray start`` twice, two CPUs each), the
driver's peak and time; ``--ray-only``: those alone (the local runs of a large
corpus take long enough on their own).
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from passing_model import server_answer  # noqa: E402  (the tests' stand-in model)

from atk_core.testing import FakeOpenAIServer  # noqa: E402

PLACES = ["Hartsop", "Caton", "Ambleside", "Kendal", "Sedbergh", "Dent", "Hawes", "Orton", "Tebay", "Shap"]
THINGS = [("lime kiln", "burned limestone from the quarry above the village"),
          ("weir", "holds back the river above the old mill"),
          ("fish pass", "lets salmon climb past the weir each autumn"),
          ("mill wheel", "turned the stones that ground the valley's oats"),
          ("packhorse bridge", "carried the wool trade over the beck"),
          ("signal box", "controlled the junction where the branch line left the main line")]


def document(rng: random.Random, number: int) -> str:
    """About 6 KB of plain facts about one place, with its own names and numbers."""
    place = rng.choice(PLACES)
    paragraphs = []
    for part in range(12):
        thing, does = rng.choice(THINGS)
        year, size, count = rng.randint(1700, 1990), rng.randint(2, 40), rng.randint(3, 900)
        paragraphs.append(
            f"The {thing} at {place} number {number}-{part} {does}. It was built in {year} and"
            f" measured {size} metres across. By {year + rng.randint(5, 60)} it served {count} households"
            f" in the parish. The last keeper, {rng.choice(['Agnes', 'Thomas', 'Mary', 'John'])}"
            f" {rng.choice(['Dixon', 'Airey', 'Mounsey', 'Harker'])}, kept its ledger until"
            f" {year + rng.randint(61, 120)}.")
    return "\n\n".join(paragraphs) + "\n"


def write_corpus(folder: Path, megabytes: float) -> int:
    """``folder`` filled with documents of about ``megabytes`` MB of text; the bytes written."""
    rng = random.Random(megabytes)
    folder.mkdir(parents=True)
    written, number = 0, 0
    while written < megabytes * 1_000_000:
        text = document(rng, number)
        (folder / f"{number // 1000:04d}" / f"doc{number:07d}.txt").parent.mkdir(exist_ok=True)
        (folder / f"{number // 1000:04d}" / f"doc{number:07d}.txt").write_text(text)
        written += len(text.encode())
        number += 1
    return written


def config(root: Path, name: str, corpus: Path, url: str, shard_bytes: int, full: bool,
           executor: str = "") -> Path:
    role = f"{{backend: openai, model: fake, base_url: '{url}', concurrency: 32, timeout: 60}}"
    light = "" if full else "questions_per_chunk: 1\nverdicts: skip\nrewrite_conversations: false\n"
    path = root / f"{name}.yaml"
    path.write_text(f"pipeline: factual-qa\ninput_dir: {corpus}\noutput_dir: {root / name}\n"
                    f"progress: [jsonl]\nshard_bytes: {shard_bytes}\n{light}"
                    f"models:\n  small: {role}\n  large: {role}\n"
                    + (f"executor: {executor}\n" if executor else ""))
    return path


def start_two_nodes(root: Path) -> tuple[str, dict]:
    """A local Ray cluster of two nodes (a head and a worker, two CPUs each); its address
    and the environment that reaches it."""
    from ray_workers import RAY, start_cluster  # beside this file

    address, env = start_cluster(root, 2)
    subprocess.run([str(RAY), "start", f"--address={address}", "--num-cpus=2",
                    "--object-store-memory=200000000", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True)
    return address, env


def atk_run(path: Path, *args, env=None) -> tuple[float, float]:
    """Seconds and peak resident MB of ``atk run PATH ARGS``, in its own process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "atk_core", "run", str(path), "-q", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(process.stderr.read().decode()[-2000:])
    process.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[4, 40, 400])
    parser.add_argument("--baseline-up-to", type=float, default=40,
                        help="run the one-piece baseline only up to this size (MB)")
    parser.add_argument("--replay-up-to", type=float, default=40,
                        help="replay the finished run (--again) only up to this size (MB)")
    parser.add_argument("--full", action="store_true", help="every step of the template, not the light run")
    parser.add_argument("--ray-up-to", type=float, default=None,
                        help="also run on a two-node local Ray cluster, up to this size (MB);"
                             " needs atk-executor-ray, and stops every Ray process here at the end")
    parser.add_argument("--ray-only", action="store_true",
                        help="with --ray-up-to: only the Ray runs (a large corpus's local figures taken apart)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="atk-scale-") as temp, \
            FakeOpenAIServer(answer=server_answer, record=False) as server:
        root = Path(temp)
        for size in args.sizes:
            corpus = root / f"corpus-{size:g}"
            text = write_corpus(corpus, size)
            if args.ray_only:
                rows.append({"size": size, "text": text / 1e6})
                continue
            sharded = config(root, f"sharded-{size:g}", corpus, server.url + "/v1", 4_000_000, args.full)
            first = server.request_count
            seconds, peak = atk_run(sharded)
            requests = server.request_count - first
            up_to_date, _ = atk_run(sharded)
            replay, replay_peak = atk_run(sharded, "--again") if size <= args.replay_up_to else (None, None)
            row = {"size": size, "text": text / 1e6, "requests": requests, "seconds": seconds, "peak": peak,
                   "up_to_date": up_to_date, "replay": replay, "replay_peak": replay_peak}
            if size <= args.baseline_up_to:
                whole = config(root, f"whole-{size:g}", corpus, server.url + "/v1", 10**15, args.full)
                row["whole_seconds"], row["whole_peak"] = atk_run(whole)
            rows.append(row)
            print(f"{size:g} MB done: {row}", file=sys.stderr, flush=True)
        if args.ray_up_to:
            from ray_workers import RAY

            address, env = start_two_nodes(root)
            try:
                for row in rows:
                    if row["size"] > args.ray_up_to:
                        continue
                    executor = f"{{ray: {{address: '{address}', workers: 2}}}}"
                    on_ray = config(root, f"ray-{row['size']:g}", root / f"corpus-{row['size']:g}",
                                    server.url + "/v1", 4_000_000, args.full, executor)
                    first = server.request_count
                    row["ray_seconds"], row["ray_peak"] = atk_run(on_ray, env=env)
                    row["ray_requests"] = server.request_count - first
                    print(f"{row['size']:g} MB on Ray: {row['ray_seconds']:.1f} s, {row['ray_peak']:.0f} MB",
                          file=sys.stderr, flush=True)
            finally:
                subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True)
    if args.ray_only:
        print("| text | requests | on Ray: first run, driver's peak |\n|---|---|---|")
        for row in rows:
            if "ray_peak" in row:
                print(f"| {row['text']:.1f} MB | {row['ray_requests']:,} | {row['ray_seconds']:.1f} s,"
                      f" {row['ray_peak']:.0f} MB |")
        return
    smallest = rows[0]["peak"]
    print("| text | requests | first run | peak memory | × peak at smallest | one piece (before) |"
          " up to date | --again (replay) | on Ray (driver's peak) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        whole = (f"{row['whole_seconds']:.1f} s, {row['whole_peak']:.0f} MB" if "whole_peak" in row else "not run")
        replay = "not run" if row["replay"] is None else f"{row['replay']:.1f} s"
        ray = f"{row['ray_seconds']:.1f} s, {row['ray_peak']:.0f} MB" if "ray_peak" in row else "not run"
        print(f"| {row['text']:.1f} MB | {row['requests']:,} | {row['seconds']:.1f} s | {row['peak']:.0f} MB |"
              f" {row['peak'] / smallest:.2f} | {whole} | {row['up_to_date']:.2f} s"
              f" ({100 * row['up_to_date'] / row['seconds']:.1f} %) | {replay} | {ray} |")


if __name__ == "__main__":
    main()
