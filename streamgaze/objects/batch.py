"""``streamgaze objects`` through Batch files (`streamgaze.llm.batch`), for labellers with ``supports_batch``.

The labeller builds and caches its requests as online; in Batch mode a request not in its cache is written to a
Batch file (``write``) or taken from the Batch results (``read``), and the answers go through the same parsing,
caching and store transaction as online answers. ``--batch`` keeps the batch ids beside the store
(``<store>.batch/batches.json``), so a rerun after a crash resumes polling.
"""
from __future__ import annotations

from pathlib import Path

from streamgaze.errors import StreamGazeError
from streamgaze.llm.batch import BatchSession, make_sync_client, submit_and_read
from streamgaze.llm.client import resolve_api_key
from streamgaze.objects.stage import run_objects

KIND = "objects"


def state_dir(store_path, shard=None) -> Path:
    """Where ``objects --batch`` keeps its request files, downloaded results and batch ids (one per shard)."""
    return Path(str(store_path) + ".batch" + (f"-{str(shard).replace('/', 'of')}" if shard else ""))


def run_objects_batch(store_path, labeller: str, options: dict, *, write_dir: Path | None = None, read_files=(),
                      submit: bool = False, images: str = "inline", shard=None) -> str:
    """`run_objects` through Batch files: ``write_dir`` writes the requests there (the store is left as it is),
    ``read_files`` reads results into the store, ``submit`` does both through the endpoint's Batches API."""
    if sum(bool(x) for x in (write_dir, read_files, submit)) != 1:
        raise StreamGazeError("give one of --batch-write DIR, --batch-read FILE, --batch")
    if images != "inline" and write_dir is None:
        raise StreamGazeError("--batch-images file goes with --batch-write (a provider's Batch API cannot read "
                              "local files)")
    if write_dir is not None:
        return run_objects(store_path, labeller, options, shard, BatchSession(KIND, "write", folder=Path(write_dir),
                                                                              images=images))
    if read_files:
        return run_objects(store_path, labeller, options, shard, BatchSession.for_read(KIND, read_files))
    base_url = options.get("base_url")
    client = make_sync_client(resolve_api_key(options.get("api_key"), base_url, "--batch"), base_url)

    def write(folder: Path) -> list[Path]:
        session = BatchSession(KIND, "write", folder=folder)
        run_objects(store_path, labeller, options, shard, session)
        return session.writer.files

    def read(paths: list[Path]) -> str:
        return run_objects(store_path, labeller, options, shard, BatchSession.for_read(KIND, paths))

    return submit_and_read(state_dir(store_path, shard), write, read, client, what="objects batch")
