"""The ``streamgaze`` command line: one click group whose commands live in modules beside this one.

The group loads a command's module (and with it the stage modules it calls) only when that command runs or its
help is shown; ``streamgaze --help`` lists every command from `COMMANDS` without importing any of them.
Every command turns bad input into one line naming the file and the problem on stderr, ``Error: <message>``,
with exit code 2: a `streamgaze.errors.StreamGazeError` raised anywhere below becomes a click error here.
"""
from __future__ import annotations

import importlib
import sys
import traceback

import click
import duckdb

from streamgaze import __version__
from streamgaze.errors import StreamGazeError, printable
from streamgaze.plugins.manager import debug

#: command name -> ("module:attribute", short help shown by ``streamgaze --help``). A test checks that each
#: short help is the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("streamgaze.cli.pipeline:demo", "Make the synthetic demo world and run the whole pipeline on it."),
    "ingest": ("streamgaze.cli.pipeline:ingest", "Load gaze (and video metadata, action labels, ...) in FORMAT into the store."),
    "ingest-dataset": ("streamgaze.cli.datasets:ingest_dataset", "Ingest every recording of dataset NAME found under ROOT (`streamgaze formats` lists the datasets)."),
    "fixations": ("streamgaze.cli.pipeline:fixations", "Detect fixations and merge them into dwell episodes."),
    "objects": ("streamgaze.cli.pipeline:objects", "Name the gazed object of each episode, the other objects inside the field of view, and those outside it."),
    "generate": ("streamgaze.cli.pipeline:generate", "Run the task specs over the store: writes OUT/<task_id>.jsonl and fills qa_items."),
    "eval": ("streamgaze.cli.evaluate:eval_cmd", "Ask a model every question; a rerun appends only what is missing."),
    "score": ("streamgaze.cli.evaluate:score", "Accuracy per task, family and overall, with clustered bootstrap 95% intervals; writes report.md, report.html and scores.png."),
    "review": ("streamgaze.cli.review:review", "Serve a page to verify questions (with the gaze-overlay clip and the evidence) and to answer them blind; verdicts and answers go into the store's reviews table."),
    "compare": ("streamgaze.cli.evaluate:compare", "Paired difference R2 - R1 on the questions both runs answered, per task and overall: clustered bootstrap 95% intervals, exact McNemar p-values (a sign-flip test for proactive tasks), Holm-corrected."),
    "review-score": ("streamgaze.cli.evaluate:review_score", "Human accuracy per task from the answers given in `streamgaze review` (answer mode), with clustered intervals, and the agreement between reviewers (Cohen's kappa for two, Fleiss' for more)."),
    "audit": ("streamgaze.cli.audit:audit", "Check a run for information from after the question time, or released questions against their metadata."),
    "sql": ("streamgaze.cli.tools:sql", "Run one read-only SQL query over the store (or over its Parquet export)."),
    "merge": ("streamgaze.cli.scale:merge", "Merge the stores, question folders or eval run folders of a sharded run into one."),
    "formats": ("streamgaze.cli.tools:formats", "List every ingest FORMAT and dataset recipe with the plugin that provides it."),
    "export": ("streamgaze.cli.tools:export", "Write question files in other benchmarks' formats, a run's results, or the store as Parquet."),
    "render": ("streamgaze.cli.tools:render", "Render videos with gaze drawn on them."),
    "tasks": ("streamgaze.cli.plugins:tasks", "List registered tasks, or scaffold a new one."),
    "plugins": ("streamgaze.cli.plugins:plugins_group", "List every registered plugin, or scaffold a new model, detector, loader or labeller."),
}


class UserError(click.ClickException):
    """A `StreamGazeError` as click shows it: ``Error: <message>`` on stderr, its exit code (2; 1 for
    `streamgaze.errors.ExternalCallsFailed`), control characters escaped (`streamgaze.errors.printable`)."""

    def __init__(self, exc: StreamGazeError):
        super().__init__(printable(exc.message))
        self.exit_code = exc.exit_code


class OptionError(click.ClickException):
    """A bad option value (`click.BadParameter`) as one line, like every other input error: ``Error: Invalid
    value for '--concurrency': 0 is not in the range x>=1.``, exit code 2, no usage block."""

    exit_code = 2

    def __init__(self, exc: click.BadParameter):
        super().__init__(printable(exc.format_message()))


class LazyGroup(click.Group):
    """A group whose subcommands are ``"module:attribute"`` strings, imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module_name, attr = self.lazy[cmd_name][0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        self.commands[cmd_name] = command  # imported once
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the stored short help strings: ``--help`` imports no command module."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if name in self.lazy and name not in self.commands:
                text = click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit)
            else:
                cmd = self.commands[name]
                if cmd.hidden:
                    continue
                text = cmd.get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            raise OptionError(exc) from exc
        except StreamGazeError as exc:
            if debug() and exc.__cause__ is not None:
                click.echo("".join(traceback.format_exception(exc.__cause__)), err=True, nl=False)
            raise UserError(exc) from exc
        except duckdb.Error as exc:  # a block that fails its checksum is found only when it is read
            if debug():
                click.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(StreamGazeError(f"the store could not be read: {first}; the file is damaged (restore it "
                                            "from a copy) or was changed by another program")) from exc


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamgaze")
def cli() -> None:
    """Turn egocentric video with eye tracking into gaze QA benchmarks, and evaluate models on them.

    Pipeline: ingest -> fixations -> objects -> generate -> eval -> score. Try `streamgaze demo`.
    """


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
