"""``review``: the page to verify and answer questions."""
from __future__ import annotations

from pathlib import Path

import click

from streamgaze.cli.common import PORT, STORE
from streamgaze.review.server import is_loopback, make_review_server, server_url


@click.command()
@STORE
@click.option("--qa", "qa_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder of <task_id>.jsonl question files.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback: only this machine).")
@click.option("--port", default=8765, show_default=True, type=PORT, help="Port (0: any free one).")
@click.option("--reviewer", help="Name stored with each verdict and answer (default: $USER; the page can change it).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for rendered overlay clips (default: a temp folder).")
def review(store: Path, qa_dir: Path, host: str, port: int, reviewer: str | None, cache_dir: Path | None) -> None:
    """Serve a page to verify questions (with the gaze-overlay clip and the evidence) and to answer them blind;
    verdicts and answers go into the store's reviews table."""
    server = make_review_server(store, qa_dir, host=host, port=port, reviewer=reviewer, cache_dir=cache_dir)
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach it can write reviews", err=True)
    click.echo(f"review: {server_url(host, server.server_port)}  (reviewer {server.app.config['REVIEWER']}; Ctrl-C stops)")
    server.serve_forever()
