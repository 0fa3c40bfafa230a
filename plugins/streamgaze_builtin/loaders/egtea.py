"""EGTEA Gaze+: ``egtea-smi`` (SMI BeGaze text export, both variants, 1280x960 px, frame times at 24 fps) and
``egtea-actions`` (the action split files).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamgaze.plugins.api import InputError, LoadContext, check_text, gaze_table, read_text, read_text_table, to_float
from streamgaze_builtin.loaders.common import one_file

# EGTEA Gaze+ (SMI BeGaze text export)

#: EGTEA gaze is in the SMI scene camera's 1280 x 960 pixels; its videos (and frame numbers) are 24 fps.
EGTEA_GAZE_SIZE = (1280.0, 960.0)
EGTEA_FPS = 24.0
#: Header lines before the first sample row (GLC / StreamGaze `parse_gtea_gaze`).
EGTEA_HEADER_LINES = 34
#: BeGaze event label -> the reference's type code (1 fixation, 2 saccade, 3 anything else).
EGTEA_EVENTS = {"Fixation": 1, "Saccade": 2}


def _egtea_version(path: Path) -> int:
    """v1 has ``## Number of Samples:`` on the 10th line (index 9), v2 on the 11th."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = [fh.readline() for _ in range(11)]
    if "## Number of Samples:" in head[9]:
        return 1
    if "## Number of Samples:" in head[10]:
        return 2
    raise InputError(path, "not an SMI BeGaze export: no '## Number of Samples:' on line 10 or 11", row=10)


def _egtea_delimiter(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            if i == EGTEA_HEADER_LINES:
                return "\t" if "\t" in line else " "
    raise InputError(path, "no data rows", row=EGTEA_HEADER_LINES + 1)


class EgteaSmiLoader:
    """EGTEA Gaze+ SMI BeGaze text (v1: 7 fields, frame no.; v2: 26 fields, hh:mm:ss:ff at 24 fps); 1280x960 px.

    Time: the sample's video frame / 24 fps; the k-th of m samples within one frame gets + k / (m * 24) so
    every sample keeps its own (increasing) time and the true per-frame mean stays available (the reference
    averaged them pairwise). Pixels outside 1280 x 960 keep their value (flagged out of frame).
    """

    name = "egtea-smi"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = check_text(one_file(ctx, self.name))
        ver = _egtea_version(path)
        delim = _egtea_delimiter(path)
        f64, s = pa.float64(), pa.string()
        if ver == 1:
            names = [f"c{i}" for i in range(7)]
            types = {"c3": f64, "c4": f64, "c5": pa.int64(), "c6": s}
        else:
            names = [f"c{i}" for i in range(26)]
            types = {"c5": f64, "c6": f64, "c24": s, "c25": s}
        table = read_text_table(path, names, types, delimiter=delim, skip_rows=EGTEA_HEADER_LINES)
        line0 = EGTEA_HEADER_LINES + 1
        if ver == 1:
            x, y = to_float(table["c3"]), to_float(table["c4"])
            frame = to_float(table["c5"])
            event = table["c6"]
        else:
            x, y = to_float(table["c5"]), to_float(table["c6"])
            frame = _timecode_frames(path, table["c24"], EGTEA_FPS, line0, names[24])
            event = table["c25"]
        bad = np.flatnonzero(~np.isfinite(frame))
        if bad.size:
            raise InputError(path, "frame number is missing", row=int(bad[0]) + line0, column="frame")
        dec = np.flatnonzero(np.diff(frame) < 0)
        if dec.size:
            raise InputError(path, "frame number goes backwards", row=int(dec[0]) + 1 + line0, column="frame")
        t = _spread_within_frames(frame, EGTEA_FPS)
        W, H = EGTEA_GAZE_SIZE
        ev = pc.fill_null(event, "")
        tracked = ~np.asarray(pc.equal(ev, "-").to_numpy(zero_copy_only=False), bool)
        ctx.notes.append(f"SMI BeGaze v{ver}; gaze normalised by {W:.0f}x{H:.0f}; time = frame / {EGTEA_FPS:g} fps")
        # SMI writes POR (0, 0) and event "-" when it has no gaze
        valid = tracked & ~((x == 0) & (y == 0))
        return {"gaze": gaze_table(t, x / W, y / H, valid).append_column("event", ev)}


def _timecode_frames(path: Path, col, fps: float, line0: int, name: str) -> np.ndarray:
    """``hh:mm:ss:ff`` -> frame number (vectorised with pyarrow string kernels)."""
    parts = pc.split_pattern(pc.fill_null(col, ""), ":")
    ok = np.asarray(pc.equal(pc.list_value_length(parts), 4).to_numpy(zero_copy_only=False), bool)
    if not ok.all():
        raise InputError(path, "timecode is not hh:mm:ss:ff", row=int(np.flatnonzero(~ok)[0]) + line0, column=name)
    flat = pc.list_flatten(parts)
    try:
        nums = np.asarray(pc.cast(flat, pa.int64()).to_numpy(), dtype=np.float64).reshape(-1, 4)
    except pa.ArrowInvalid:
        raise InputError(path, "timecode is not hh:mm:ss:ff", column=name) from None
    return (nums[:, 0] * 3600 + nums[:, 1] * 60 + nums[:, 2]) * fps + nums[:, 3]


def _spread_within_frames(frame: np.ndarray, fps: float) -> np.ndarray:
    """Time of each sample: frame / fps, plus k / (m * fps) for the k-th of the m samples in its frame."""
    n = frame.size
    if n == 0:
        return frame.astype(np.float64)
    start = np.flatnonzero(np.concatenate(([True], frame[1:] != frame[:-1])))
    counts = np.diff(np.concatenate((start, [n])))
    k = np.arange(n) - np.repeat(start, counts)
    return (frame + k / np.repeat(counts, counts)) / fps


class EgteaActionsLoader:
    """EGTEA action split files (<video>-<start ms>-<end ms>-F<f0>-F<f1> action verb noun); +action_idx.txt names."""

    name = "egtea-actions"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        names = next((p for p in ctx.paths if p.name == "action_idx.txt"), None)
        splits = [p for p in ctx.paths if p is not names]
        if not splits:
            raise InputError(ctx.paths[0], "no action split file given")
        label_of = {}
        if names is not None:
            for i, line in enumerate(read_text(names).splitlines()):
                parts = line.rsplit(None, 1)
                if len(parts) == 2 and parts[1].isdigit():
                    label_of[int(parts[1])] = parts[0].strip()
                elif line.strip():
                    raise InputError(names, "expected '<action name> <index>'", row=i + 1)
        tables = []
        for path in splits:
            tab = read_text_table(path, ["clip", "action", "verb", "noun"], {"clip": pa.string(), "action": pa.int64()},
                                  delimiter=" ")
            m = pc.extract_regex(tab["clip"], r"^(?P<vid>.+)-(?P<s>\d+)-(?P<e>\d+)-F\d+-F\d+$")
            ok = np.asarray(pc.is_valid(m).to_numpy(zero_copy_only=False), bool)
            if not ok.all():
                raise InputError(path, "clip name is not <video>-<start ms>-<end ms>-F<n>-F<n>",
                                 row=int(np.flatnonzero(~ok)[0]) + 1, column="clip")
            vid = pc.struct_field(m, "vid")
            keep = pc.equal(vid, ctx.video_id)
            tab, m = tab.filter(keep), m.filter(keep)
            t0 = to_float(pc.cast(pc.struct_field(m, "s"), pa.int64())) / 1000
            t1 = to_float(pc.cast(pc.struct_field(m, "e"), pa.int64())) / 1000
            idx = tab["action"].to_numpy(zero_copy_only=False)
            labels = [label_of.get(int(a), f"action {int(a)}") for a in np.unique(idx)]
            lab = dict(zip(np.unique(idx).tolist(), labels))
            tables.append(pa.table({"t_start": t0, "t_end": t1,
                                    "label": pa.array([lab[a] for a in idx.tolist()], pa.string())}))
        table = pa.concat_tables(tables).sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        if table.num_rows == 0:
            raise InputError(splits[0], f"no clip of video {ctx.video_id!r} (pass --video-id)")
        return {"actions": table}
