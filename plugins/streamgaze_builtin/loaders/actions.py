"""``actions-csv``: ``t_start,t_end,label`` in seconds; and `json_actions`, the checked action rows of the
dataset loaders that read JSON (EgoExoLearn, HoloAssist).
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from streamgaze.plugins.api import InputError, LoadContext, read_csv_columns, require_file, validate_actions


class ActionsCsvLoader:
    """Action labels: CSV with t_start,t_end,label (seconds from the video start), optional video_id; files concatenated."""

    name = "actions-csv"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        tables, with_ids = [], []
        for path in ctx.paths:
            require_file(path)
            table = read_csv_columns(
                path, {"t_start": pa.float64(), "t_end": pa.float64(), "label": pa.string()},
                optional={"video_id": pa.string()},
            )
            # validated per file so rows in messages are the file's lines
            validate_actions(path, table)
            with_ids.append("video_id" in table.column_names)
            tables.append(table)
        if any(with_ids) and not all(with_ids):
            raise InputError(ctx.paths[with_ids.index(False)], "no video_id column, but another file given has one",
                             row=1, column="video_id")
        cols = ["video_id"] * all(with_ids) + ["t_start", "t_end", "label"]
        table = pa.concat_tables([t.select(cols) for t in tables])
        if not all(with_ids):  # with ids, ingest splits the rows by video (file lines kept for messages), then sorts
            table = table.sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        return {"actions": table}


def json_actions(path: Path, t0: list, t1: list, labels: list, fields: tuple[str, str, str], rows: list[int],
                  what: str) -> pa.Table:
    """Action rows read from JSON records, checked by `validate_actions`; an error names the record (1-based
    ``row`` = its place in the file's list, ``what`` says which list) and the JSON field."""

    column = dict(zip(("t_start", "t_end", "label"), fields))
    for name, values in (("t_start", t0), ("t_end", t1)):
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise InputError(path, f"{what}: time is missing or not a number", row=rows[i], column=column[name])
            try:
                values[i] = float(v)
            except ValueError:
                raise InputError(path, f"{what}: time is not a number", row=rows[i], column=column[name]) from None
    for i, v in enumerate(labels):
        if not isinstance(v, str):
            raise InputError(path, f"{what}: label is missing or not text", row=rows[i], column=column["label"])
    table = pa.table({"t_start": pa.array(t0, pa.float64()), "t_end": pa.array(t1, pa.float64()),
                      "label": pa.array(labels, pa.string())})
    try:
        return validate_actions(path, table)
    except InputError as exc:  # validate_actions counts CSV lines (header = row 1); here rows are records
        raise InputError(path, f"{what}: {exc.problem}", row=rows[(exc.row or 2) - 2],
                         column=column.get(exc.column or "", exc.column)) from None
