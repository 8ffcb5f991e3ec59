"""How fast `atk --help` and `import atk_core` start, with and without plugins.

Prints the median wall time of each over several runs, with no plugins and
with 20 generated dummy plugins on the path, and how many plugin modules
`atk --help` imports (the design requires 0). `atk list`, which does load
every plugin, is timed as the baseline that shows what lazy loading saves.

    python bench/startup.py [--runs 15]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DUMMIES = 20
PLUGIN_MODULE = '''
import json, decimal, fractions, statistics  # a plugin's typical imports
from atk_core import hookimpl, Pipeline

def run(**kwargs):
    pass

@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="dummy-{i}", function=run, description="dummy {i}"))
'''


def make_site(root: Path) -> Path:
    site = root / "site"
    for i in range(DUMMIES):
        package = site / f"atk_dummy_{i}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(PLUGIN_MODULE.format(i=i))
        info = site / f"atk_dummy_{i}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: atk-dummy-{i}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[atk]\ndummy{i} = atk_dummy_{i}\n")
    return site


def median_seconds(command, env, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


COUNTING_RUNNER = """
import atexit, sys
atexit.register(lambda: print("PLUGIN_MODULES", sum(m.startswith("atk_dummy_") for m in sys.modules),
                              file=sys.stderr))
sys.argv = ["atk", *sys.argv[1:]]
from atk_core.commands.cli import main
main()
"""


def plugin_modules_imported(arguments, env):
    """Run the CLI in a process that counts the plugin modules in sys.modules as it exits."""
    result = subprocess.run([sys.executable, "-c", COUNTING_RUNNER, *arguments], env=env,
                            capture_output=True, text=True)
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("PLUGIN_MODULES")]
    return int(line.split()[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(Path(tmp))
        bare = {k: v for k, v in os.environ.items() if k != "ATK_LOAD_PLUGINS"}
        with_plugins = dict(bare, PYTHONPATH=os.pathsep.join(filter(None, [str(site), bare.get("PYTHONPATH")])))
        commands = {
            "atk --help": [sys.executable, "-m", "atk_core", "--help"],
            "import atk_core": [sys.executable, "-c", "import atk_core"],
            "atk list (loads plugins)": [sys.executable, "-m", "atk_core", "list"],
        }
        print(f"median of {runs} runs, seconds")
        print(f"{'command':28} {'no plugins':>11} {f'{DUMMIES} plugins':>11}")
        for label, command in commands.items():
            plain = median_seconds(command, bare, runs)
            loaded = median_seconds(command, with_plugins, runs)
            print(f"{label:28} {plain:11.3f} {loaded:11.3f}")
        help_imports = plugin_modules_imported(["--help"], with_plugins)
        list_imports = plugin_modules_imported(["list"], with_plugins)
        print(f"plugin modules imported by `atk --help`: {help_imports} (must be 0)")
        print(f"plugin modules imported by `atk list`:   {list_imports} (all {DUMMIES})")
        if help_imports:
            sys.exit(1)


if __name__ == "__main__":
    main()
