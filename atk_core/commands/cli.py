"""The ``atk`` command: a thin layer over config, runner and plugins.

Nothing here loads a plugin until a command needs one, so ``atk --help`` and
``atk --version`` stay fast however many plugins are installed. Every error a
user can cause is one line on stderr and a non-zero exit status; ``--debug``
adds the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from pathlib import Path

import click

from ..errors import AtkError, ConfigError
from ..version import __version__

log = logging.getLogger("atk")

_state = {"debug": bool(os.environ.get("ATK_DEBUG")), "secrets": []}


class AtkGroup(click.Group):
    """Plugin commands are found only when a name is not a built-in command."""

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and not ctx.resilient_parsing:
            from ..engine.plugins import get_registry

            get_registry().add_commands(self)
            command = super().get_command(ctx, name)
        return command


def _debug_option(f):
    def turn_on(ctx, param, value):
        if value:
            _state["debug"] = True
        return value

    return click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                        callback=turn_on, help="Show tracebacks of errors.")(f)


@click.group(cls=AtkGroup, epilog="Plugins can add commands too: `atk plugins` lists what is installed.")
@click.version_option(__version__, "--version", prog_name="atk", message="%(prog)s %(version)s")
@_debug_option
def cli():
    """Turn raw documents into LLM training datasets by running pipelines."""


# -- list and plugins -----------------------------------------------------------------------

_KINDS = {"pipelines": "pipeline", "backends": "backend", "reporters": "reporter",
          "executors": "executor", "readers": "reader"}


@cli.command("list")
@click.argument("kind", required=False, type=click.Choice(sorted(_KINDS)))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@_debug_option
def list_command(kind, as_json):
    """List installed pipelines, model backends, progress reporters, executors and readers."""
    from ..engine.plugins import get_registry

    registry = get_registry()
    wanted = [kind] if kind else list(_KINDS)
    listing = {
        plural: [
            {
                "name": r.name,
                "distribution": r.plugin.distribution,
                "version": r.plugin.version,
                "description": r.description,
                # what a pipeline declares it writes: file, kind, format, primary
                **({"outputs": [o.to_dict() for o in r.obj.outputs]} if plural == "pipelines" else {}),
                # what a reader claims: the file suffixes it reads
                **({"suffixes": list(r.obj.suffixes)} if plural == "readers" else {}),
            }
            for r in registry.registrations(_KINDS[plural])
        ]
        for plural in wanted
    }
    if as_json:
        click.echo(json.dumps(listing[kind] if kind else listing, indent=2))
        return
    for plural in wanted:
        if not kind:
            click.echo(f"{plural}:")
        indent = "  " if not kind else ""
        rows = [[e["name"], _dist_label(e), e["description"]
                 + (f" ({' '.join(e['suffixes'])})" if e.get("suffixes") else "")] for e in listing[plural]]
        _table(rows or [["(none installed)", "", ""]], indent=indent)
        if plural == "pipelines" and listing[plural]:
            click.echo()
            click.echo(f"{indent}what each pipeline writes:")
            for r in registry.registrations("pipeline"):
                click.echo(f"{indent}  {r.name}:")
                for line in r.obj.describe_outputs() or ["(declares no outputs)"]:
                    click.echo(f"{indent}    {line}")
        if not kind and plural != wanted[-1]:
            click.echo()


@cli.command("plugins", short_help="Every plugin: its distribution, hooks and any load error.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@_debug_option
def plugins_command(as_json):
    """Show every plugin: its distribution, the hooks it implements, and any load error."""
    from ..engine.plugins import get_registry

    plugins = [p.to_dict() for p in get_registry().plugins.values()]
    if as_json:
        click.echo(json.dumps(plugins, indent=2))
        return
    rows = [
        [
            p["name"],
            _dist_label(p) + (" (built in)" if p["builtin"] else ""),
            ", ".join(h.replace("atk_register_", "") for h in p["hooks"]) or "-",
            f"ERROR: {p['error']}" if p["error"] else "ok",
        ]
        for p in plugins
    ]
    _table([["NAME", "DISTRIBUTION", "HOOKS", "STATUS"], *rows])


# -- init and prompts ---------------------------------------------------------------------------


@cli.command("init", short_help="Write a pipeline's config template (and --samples).")
@click.argument("pipeline")
@click.argument("path", required=False, type=click.Path())
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--samples", is_flag=True,
              help="Also copy the pipeline's sample documents to documents/ beside PATH.")
@_debug_option
def init_command(pipeline, path, force, samples):
    """Write PIPELINE's config template to PATH (default: PIPELINE.yaml)."""
    from ..toolkit.files import atomic_write_text
    from ..engine.plugins import get_registry
    from ..engine.resources import copy_tree

    chosen = get_registry().pipeline(pipeline)
    if path and (path.endswith(("/", os.sep)) or os.path.isdir(path)):  # a folder: the file in it
        path = os.path.join(path, f"{chosen.name}.yaml")
    path = path or f"{chosen.name}.yaml"
    if os.path.exists(path) and not force:
        raise ConfigError(f"{path} already exists; use --force to overwrite it")
    template = chosen.config_template()
    folder = chosen.samples() if samples else None
    if samples and folder is None:
        raise ConfigError(f"pipeline {chosen.name!r} ships no sample documents")
    dest = os.path.join(os.path.dirname(path) or ".", "documents")
    if folder is not None:  # the documents first: a refusal there leaves no config behind
        if os.path.exists(dest) and not os.path.isdir(dest):
            raise ConfigError(f"{dest} exists and is not a folder; the sample documents go there")
        written, skipped = copy_tree(folder, dest)
    atomic_write_text(path, template)
    click.echo(f"wrote {path}; edit it, then run: atk run {path}")
    if chosen.outputs:
        click.echo(f"{chosen.name} writes, in its output_dir:")
        for line in chosen.describe_outputs():
            click.echo(f"  {line}")
    if folder is not None:
        click.echo(f"copied {len(written)} sample document(s) to {dest}"
                   + (f" ({len(skipped)} already there)" if skipped else ""))


@cli.command("prompts", short_help="Copy a pipeline's prompts out, to edit and override.")
@click.argument("pipeline")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite prompt files that exist in DEST.")
@_debug_option
def prompts_command(pipeline, dest, force):
    """Copy PIPELINE's prompts to DEST, to edit and use with `prompt_overrides: DEST`."""
    from ..engine.plugins import get_registry
    from ..engine.resources import copy_tree

    registry = get_registry()
    chosen = registry.pipeline(pipeline)
    own = (chosen.files() / "prompts").is_dir()
    # Its own prompts, then (a pipeline made of others) each part's in a subfolder named after
    # it, where prompt_overrides looks for them.
    folders = [(chosen.prompts(), dest)] if own or not chosen.parts else []
    folders += [(registry.pipeline(part).prompts(), os.path.join(dest, part)) for part in chosen.parts]
    targets = [t for folder, where in folders for t in _traversable_files(folder, where)]
    in_the_way = [p for p in targets if os.path.isdir(p)]
    if in_the_way:  # checked before copying, so that nothing is half copied
        raise ConfigError(f"{in_the_way[0]} is a folder where a prompt file goes")
    if not force:
        clashes = [p for p in targets if os.path.exists(p)]
        if clashes:
            raise ConfigError(
                f"{len(clashes)} prompt file(s) already exist in {dest} (e.g. {clashes[0]});"
                " use --force to overwrite"
            )
    written = [w for folder, where in folders for w in copy_tree(folder, where, overwrite=True)[0]]
    click.echo(f"copied {len(written)} prompt file(s) to {dest}; point prompt_overrides: at it")


def _traversable_files(folder, dest):
    for item in folder.iterdir():
        if item.name == "__pycache__":
            continue
        target = os.path.join(dest, item.name)
        if item.is_dir():
            yield from _traversable_files(item, target)
        else:
            yield target


# -- inspect ----------------------------------------------------------------------------------------


@cli.command("inspect", short_help="Where a run dropped samples and why, and a few records.")
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("-n", "samples", default=3, show_default=True, type=click.IntRange(min=0),
              help="How many records to show.")
@click.option("--seed", default=0, show_default=True, help="Which records (the same seed shows the same ones).")
@click.option("--file", "file", default=None, help="Output file to sample (default: the run's main output).")
@_debug_option
def inspect_command(output_dir, samples, seed, file):
    """Show where a run dropped samples and why, then a few of its records."""
    from .inspection import report

    click.echo(report(output_dir, samples=samples, seed=seed, file=file), nl=False)


# -- export -----------------------------------------------------------------------------------------


@cli.command("export", short_help="A run's datasets as a Hugging Face dataset folder, or its exam as an lm-eval task.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "kind", type=click.Choice(["hf", "lm-eval"]), required=True,
              help="hf: Parquet files, one config per output file (an exam is its test split), and a"
                   " dataset card. lm-eval: the run's exam as an lm-evaluation-harness task.")
@click.argument("path", type=click.Path())
@click.option("--push", "repo", default=None, metavar="REPO",
              help="Then upload the folder to the Hugging Face dataset repo REPO (owner/name);"
                   " needs a token (HF_TOKEN or huggingface-cli login). hf only.")
@click.option("--private", is_flag=True, help="With --push: make the repo private if it is new.")
@click.option("--force", is_flag=True, help="Replace PATH if it is an earlier export.")
@_debug_option
def export_command(run_dir, kind, path, repo, private, force):
    """Write the datasets of the finished run RUN_DIR to PATH (hf: needs atk-core[hf]), or its
    exam as an lm-evaluation-harness task (lm-eval)."""
    from .export import check_push, export_hf, export_lm_eval, push_hf

    if kind == "lm-eval":
        if repo is not None:
            raise ConfigError("--push uploads an hf export only; an lm-eval task is not uploaded")
        tasks = export_lm_eval(run_dir, path, force=force)
        click.echo(f"wrote {path}: {', '.join(f'{task} ({items} questions)' for task, items in tasks.items())};"
                   f" run it with lm_eval --include_path {path} --tasks {','.join(tasks)}")
        return
    if repo is not None:
        check_push(repo)  # before anything is written
    counts = export_hf(run_dir, path, force=force)
    click.echo(f"wrote {path}: {', '.join(f'{name} ({rows})' for name, rows in counts.items())}")
    if repo is not None:
        click.echo(f"uploaded to {push_hf(path, repo, private=private)}")


# -- serve and new ----------------------------------------------------------------------------------


def _default_running() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


@cli.command("serve", short_help="The web interface: start runs, watch them, get outputs.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8400, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--runs-dir", default="atk-runs", show_default=True, type=click.Path(file_okay=False),
              help="Where runs, their configs, logs and outputs are kept (private to you).")
@click.option("--token-file", default=None, type=click.Path(dir_okay=False),
              help="Read the token every request must carry from this file (else ATK_SERVE_TOKEN,"
                   " else a new one is made and printed in the page's URL).")
@click.option("--token", default=None,
              help="The token, on the command line: other users of this machine can read it"
                   " in the process list, so prefer --token-file or ATK_SERVE_TOKEN.")
@click.option("--no-token", is_flag=True,
              help="No token: every program and user on this machine that can reach the port"
                   " can start runs as you, with your files and keys (loopback only).")
@click.option("--allow-env", "allow_env", multiple=True, metavar="NAME[,NAME...]",
              help="Environment variables a config sent to the server may use as ${NAME}"
                   " (say OPENAI_API_KEY); no other is expanded.")
@click.option("--allow-input", "allow_input", multiple=True, type=click.Path(file_okay=False),
              metavar="DIR", help="Folders a config sent to the server may read from (repeatable;"
                                  " default: the folder atk serve starts in).")
@click.option("--allow-scripted", is_flag=True,
              help="Let configs sent to the server use the scripted backend, which runs a Python"
                   " function the config names (for tests and demos).")
@click.option("--max-running", default=None, type=click.IntRange(min=1),
              help="How many runs go at once; the rest wait in a queue, in order (default: half"
                   f" the CPU cores, at least 1; here {_default_running()}).")
@click.option("--max-queued", default=100, show_default=True, type=click.IntRange(min=1),
              help="How many runs may wait in the queue; more are refused until some start.")
@_debug_option
def serve_command(host, port, runs_dir, token_file, token, no_token, allow_env, allow_input,
                  allow_scripted, max_running, max_queued):
    """The local web interface: start runs from templates, watch progress, fetch outputs."""
    from ..serve import resolve_token, serve

    chosen = resolve_token(token=token, token_file=token_file, environ=os.environ, no_token=no_token)
    names = [name.strip() for entry in allow_env for name in entry.split(",") if name.strip()]
    serve(host=host, port=port, runs_dir=runs_dir, token=chosen, allow_env=names,
          allow_input=list(allow_input) or [os.getcwd()],
          max_running=max_running or _default_running(), allow_scripted=allow_scripted,
          max_queued=max_queued)


@cli.command("new")
@click.argument("kind", type=click.Choice(["pipeline", "backend", "reporter", "reader"]))
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to create the new distribution in.")
@_debug_option
def new_command(kind, name, directory):
    """Create a new plugin distribution atk-KIND-NAME from a scaffold."""
    from .scaffold import create

    path = create(kind, name, directory)
    click.echo(f"created {path}")
    click.echo(f"next: pip install -e {path} && python -m pytest {path}")


# -- run ----------------------------------------------------------------------------------------


@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, e.g. --set chunk_size=2000 (repeatable).")
@click.option("--set-file", "set_file", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Overrides from a file, one KEY=VALUE per line, applied as --set before the"
                   " command line's (atk serve passes a run's settings so, out of the process list).")
@click.option("--model", "model_overrides", multiple=True, metavar="ROLE=BACKEND[:MODEL]",
              help="Swap a model role's backend, e.g. --model large=llamacpp (repeatable).")
@click.option("--progress", "progress", multiple=True, metavar="NAME",
              help="Progress reporter(s) to use instead of the config's (repeatable); with"
                   " options: --progress '{webhook: {url: http://...}}'.")
@click.option("--executor", "executor", default=None, metavar="NAME",
              help="Where steps run their samples, instead of the config's executor: (default"
                   " local); with options: --executor '{ray: {workers: 4}}'.")
@click.option("--estimate", is_flag=True,
              help="Send nothing: print the requests, tokens and cost the run would take, per"
                   " step and model role (see docs/configuration.md).")
@click.option("--json", "as_json", is_flag=True, help="With --estimate: print JSON for machines.")
@click.option("--again", is_flag=True,
              help="Run even when the output folder already holds this run's outputs (same"
                   " config, inputs and code); stored answers are still not sent again.")
@click.option("--quiet", "-q", is_flag=True,
              help="Print nothing of atk's own but an error: no warnings, no closing lines (the"
                   " progress reporters still print what they print).")
@_debug_option
def run_command(config, overrides, set_file, model_overrides, progress, executor, estimate, as_json,
                again, quiet):
    """Run the pipeline a CONFIG file names."""
    from ..engine.config import executor_option, load_config, overrides_from_file, progress_option
    from ..engine.runner import run

    if as_json and not estimate:
        raise click.UsageError("--json goes with --estimate")
    if quiet:  # a reporter that owns stderr is not mixed with atk's own lines
        log.setLevel(logging.ERROR)
    if set_file is not None:
        overrides = (*overrides_from_file(set_file), *overrides)
    loaded = load_config(config, overrides)
    _state["secrets"] = loaded.secret_values()
    reporters = [progress_option(text) for text in progress]
    executor = executor_option(executor) if executor is not None else None
    if estimate:
        from .estimate import estimate as make_estimate

        found = make_estimate(loaded, model_overrides=model_overrides, executor=executor)
        click.echo(json.dumps(found.to_dict(), indent=2) if as_json else found.text().rstrip("\n"))
        return
    result = run(loaded, progress=reporters or None, model_overrides=model_overrides,
                 executor=executor, again=again)
    if result.up_to_date:
        if not quiet:
            click.echo(f"atk: {result.output_dir} is up to date: its outputs already match this"
                       " config, its inputs and the pipeline's code; nothing to run (--again runs"
                       " it anyway)", err=True)
        return
    if result.status != "failed" and not quiet:  # a failure's one line should stand alone
        for role, model in result.models.items():
            click.echo(f"atk: model {role}: {_usage_line(model.summary())}", err=True)
    if result.status == "done":
        if not quiet:
            click.echo(f"atk: {result.pipeline} finished in {result.seconds:.1f}s;"
                       f" outputs in {result.output_dir}", err=True)
        return
    if _state["debug"] and result.traceback:
        click.echo(result.traceback, err=True, nl=False)
    if result.status == "interrupted":
        _error(f"{result.pipeline} was interrupted; run the same command again to resume")
    else:
        _error(f"pipeline {result.pipeline!r} failed: {result.error}", hint=True)
    sys.exit(result.exit_code)


@cli.command("eval", short_help="Score models on the exam a run set aside.")
@click.argument("exam", type=click.Path())
@click.option("--model", "models", multiple=True, metavar="NAME=BACKEND[:MODEL]",
              help="A model to test, e.g. --model tuned=openai:my-model (repeatable: they are"
                   " scored side by side). Its options: --set models.NAME.base_url=...")
@click.option("--judge", default=None, metavar="BACKEND[:MODEL]",
              help="Also ask this model whether each answer states the reference's fact; its"
                   " verdict is shown beside the score, never instead of it.")
@click.option("--open-book", is_flag=True,
              help="Ask each question a second time with its source passage in the prompt: the"
                   " most a model can score, to compare with closed book.")
@click.option("--output", "-o", "output_dir", default=None, type=click.Path(file_okay=False),
              help="Where the answers, eval.json and the store go (default: eval/ in the run"
                   " folder the exam belongs to). Run again with the same folder: nothing is sent"
                   " twice.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Set a field, e.g. --set models.tuned.base_url=http://127.0.0.1:8000/v1 or"
                   " --set max_tokens=100.")
@click.option("--estimate", is_flag=True, help="Send nothing: print the requests and tokens it would take.")
@click.option("--json", "as_json", is_flag=True, help="Print eval.json (or, with --estimate, the estimate) as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing of atk's own but the table or an error.")
@_debug_option
def eval_command(exam, models, judge, open_book, output_dir, overrides, estimate, as_json, quiet):
    """Ask each model the questions of EXAM (a run folder whose manifest declares an exam, or
    the exam's file) and score
    every answer against its reference answer (docs/eval.md)."""
    import yaml

    from ..engine.config import config_from_text
    from ..engine.runner import run
    from ..evaluation.pipeline import JUDGE, NAME, REPORT, run_folder_of, table
    from ..models.specs import as_mapping

    if not models:
        raise click.UsageError("give at least one --model NAME=BACKEND[:MODEL] to test")
    if quiet:
        log.setLevel(logging.ERROR)
    roles = {}
    for given in models:
        name, equals, spec = given.partition("=")
        name = name.strip()
        if not equals or not name or not spec.strip():
            raise click.UsageError(f"--model {given!r}: write NAME=BACKEND[:MODEL], e.g. tuned=openai:my-model")
        if name == JUDGE:
            raise click.UsageError(f"--model {given!r}: {JUDGE} is the --judge's role; name the model otherwise")
        if name in roles:
            raise click.UsageError(f"--model {given!r}: {name} is given twice")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):  # a role is a key of --set models.NAME.x
            raise click.UsageError(f"--model {given!r}: name the model with letters, digits, _ and -"
                                   " only (it is how --set models.NAME.OPTION reaches it)")
        roles[name] = as_mapping(spec.strip())  # a mapping, so that --set models.NAME.x=... works
    if judge is not None:
        roles[JUDGE] = as_mapping(judge.strip())
    exam_path = Path(exam).expanduser().resolve()
    if output_dir is None:
        output_dir = (exam_path if exam_path.is_dir() else run_folder_of(exam_path)) / "eval"
    other = _other_run(Path(output_dir), NAME)
    if other:  # its manifest, failures and store would be overwritten
        raise ConfigError(f"--output {output_dir}: it holds a run of {other}; give the eval a folder of its own")
    text = yaml.safe_dump({"pipeline": NAME, "exam": str(exam_path), "open_book": bool(open_book),
                           "output_dir": str(Path(output_dir).expanduser().resolve()),
                           "models": roles}, sort_keys=False)
    loaded = config_from_text(text, "atk eval", overrides)
    _state["secrets"] = loaded.secret_values()
    if estimate:
        from .estimate import estimate as make_estimate

        found = make_estimate(loaded)
        click.echo(json.dumps(found.to_dict(), indent=2) if as_json else found.text().rstrip("\n"))
        return
    # stdout is the table's; progress goes to stderr, or (quiet) to progress.jsonl only
    reporter = {"jsonl": {}} if quiet else {"console": {"stream": "stderr"}}
    result = run(loaded, progress=[reporter])
    if result.status == "done":
        report = json.loads((Path(result.output_dir) / REPORT).read_text(encoding="utf-8"))
        click.echo(json.dumps(report, indent=2) if as_json else table(report), nl=as_json)
        if not quiet and result.up_to_date:
            log.warning("nothing asked: %s already holds these models' answers to this exam, with these"
                        " settings; if the model behind a name has changed (retrained, served again),"
                        " give this eval another --output or the model another name", result.output_dir)
        elif not quiet:
            for role, model in result.models.items():
                summary = model.summary()
                click.echo(f"atk: model {role}: {_usage_line(summary)}", err=True)
                if role != JUDGE and not summary["requests_sent"] and summary["answers_from_store"]:
                    log.warning("every answer of %s came from the store of an earlier eval in %s; if"
                                " the model behind it has changed (retrained, served again), give this"
                                " eval another --output or the model another name", role, result.output_dir)
            click.echo(f"atk: answers and eval.json in {result.output_dir}", err=True)
        return
    if _state["debug"] and result.traceback:
        click.echo(result.traceback, err=True, nl=False)
    if result.status == "interrupted":
        _error("the eval was interrupted; run the same command again to resume")
    else:
        _error(f"atk eval failed: {result.error}", hint=True)
    sys.exit(result.exit_code)


def _other_run(folder: Path, pipeline: str) -> str | None:
    """The pipeline of a finished run in ``folder``, when it is not ``pipeline``."""
    try:
        found = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("pipeline")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) and found != pipeline else None


def _usage_line(summary) -> str:
    usage = summary["usage_sent"]
    stored, reused = summary["answers_from_store"], summary.get("answers_reused", 0)
    # On a first run, answers from the store are requests that parts or steps asked twice:
    # say so, or it reads as a stale cache.
    again = (f" ({'all' if reused == stored else reused} asked earlier in this run: identical"
             " requests share one answer)") if reused else ""
    line = (f"{summary['requests_sent']} requests sent, {stored} answers from the store{again},"
            f" {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens")
    if usage.get("cache_read_tokens") or usage.get("cache_write_tokens"):
        line += (f" (of the prompt tokens, {usage['cache_read_tokens']} read from the provider's cache,"
                 f" {usage['cache_write_tokens']} written to it)")
    if summary["cost_sent"] is not None:
        line += f", ${summary['cost_sent']:.4f}"
    return line


# -- entry point ---------------------------------------------------------------------------------


def main(argv=None):
    _configure_logging()
    try:
        code = cli.main(args=argv, prog_name="atk", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("atk: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, like every other refusal
        where = exc.ctx.command_path if exc.ctx is not None else "atk"
        _error(f"{exc.format_message()} (see `{where} --help`)")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except AtkError as exc:
        if _state["debug"]:
            traceback.print_exc()
        _error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("atk: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:  # the machine said no (permissions, a full disk): say what and where
        if _state["debug"]:
            traceback.print_exc()
        what = exc.strerror or type(exc).__name__
        _error(f"{what}: {exc.filename}" if exc.filename else what)
        sys.exit(1)
    except Exception as exc:  # a bug: still one line, unless --debug
        if _state["debug"]:
            traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {exc}", hint=True)
        sys.exit(1)
    sys.exit(code or 0)


def _error(message: str, hint: bool = False):
    from ..engine.redaction import scrub

    message = scrub(" ".join(str(message).split()), _state["secrets"])
    if hint and not _state["debug"]:
        message += " (--debug shows the traceback)"
    click.echo(f"atk: error: {message}", err=True)


class _OneLine(logging.Formatter):
    def format(self, record):
        from ..engine.redaction import scrub

        text = " ".join(record.getMessage().split("\n"))
        return f"atk: {record.levelname.lower()}: {scrub(text, _state['secrets'])}"


def _configure_logging():
    if any(getattr(h, "_atk", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler._atk = True
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _dist_label(entry) -> str:
    name, version = entry.get("distribution"), entry.get("version")
    return f"{name} {version}" if name and version else (name or "")


def _table(rows, indent=""):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)]
        click.echo((indent + "  ".join(cells)).rstrip())
