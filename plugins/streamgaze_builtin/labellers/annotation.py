"""Built-in object labellers.

``annotation``: reads an annotation file (the synthetic world's ``truth.json``: object names, attributes and a box
per frame) and labels each episode from it and the stored gaze. Options: ``truth`` (a path, or ``{video_id: path}``;
default ``truth.json`` beside the video file) and ``fov_radius`` (fraction of the frame width; default the file's
``fov_radius``).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from streamgaze.plugins.api import InputError, Labeller


class Annotation:
    """A parsed truth file: object boxes as one array, (n_objects, n_frames, 4), NaN where not visible."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        try:
            video = data["video"]
            self.fps = float(video["fps"])
            self.width, self.height = float(video["width"]), float(video["height"])
            self.frame_t = np.asarray(data["frames"]["t_s"], dtype=np.float64)
            n = len(self.frame_t)
            objects = data["objects"]
            self.ids = [str(o["id"]) for o in objects]
            self.names = [str(o["name"]) for o in objects]
            self.attributes = [dict(o.get("attributes") or {}) for o in objects]
            self.fov_radius = float(data.get("fov_radius", 0.12))
            boxes = np.full((len(objects), n, 4), np.nan)
            for k, oid in enumerate(self.ids):
                per_frame = data["frames"]["boxes"][oid]
                if len(per_frame) != n:
                    raise ValueError(f"frames.boxes.{oid} has {len(per_frame)} entries for {n} frames")
                idx = [i for i, b in enumerate(per_frame) if b is not None]
                if idx:
                    boxes[k, idx] = np.asarray([per_frame[i] for i in idx], dtype=np.float64)
            self.boxes = boxes
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(path, f"not a valid annotation file: {type(exc).__name__}: {exc}") from None
        if n == 0 or not self.ids:
            raise InputError(path, "not a valid annotation file: no frames or no objects")


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> Annotation:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read annotation file: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(path, "not a valid annotation file: expected a JSON object")
    return Annotation(Path(path), data)


def load_annotation(path: str | Path) -> Annotation:
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "annotation file not found (pass --truth)")
    st = p.stat()
    return _load(str(p), st.st_mtime_ns, st.st_size)


def _truth_path(video: dict, options: dict) -> Path:
    opt = options.get("truth")
    if isinstance(opt, dict):
        opt = opt.get(video["video_id"])
    if opt:
        return Path(opt)
    if not video.get("path"):
        raise InputError(f"video {video['video_id']}", "has no video path to find truth.json beside; pass --truth")
    return Path(video["path"]).parent / "truth.json"


def label_episodes(ann: Annotation, episodes: list[dict], t: np.ndarray, x: np.ndarray, y: np.ndarray,
                   fov_radius: float) -> list[dict]:
    """Rows for ``episodes`` from valid gaze samples (t, x, y), top-left normalised, video time."""
    rows: list[dict] = []
    n_frames = len(ann.frame_t)
    r_px = fov_radius * ann.width
    attrs = [json.dumps(a, sort_keys=True) for a in ann.attributes]
    for ep in episodes:
        t0, t1 = float(ep["t_start"]), float(ep["t_end"])
        f0 = int(np.searchsorted(ann.frame_t, t0 - 1e-9, "left"))
        f1 = int(np.searchsorted(ann.frame_t, t1 + 1e-9, "right"))
        if f1 <= f0:  # shorter than a frame: the nearest frame
            f0 = min(int(np.rint((t0 + t1) / 2 * ann.fps)), n_frames - 1)
            f1 = f0 + 1
        f0, f1 = min(f0, n_frames - 1), min(max(f1, f0 + 1), n_frames)
        nf = f1 - f0
        boxes = ann.boxes[:, f0:f1]  # (n_obj, nf, 4)
        lo, hi = np.searchsorted(t, t0, "left"), np.searchsorted(t, t1, "right")
        st, sx, sy = t[lo:hi], x[lo:hi], y[lo:hi]
        sf = np.clip(np.rint(st * ann.fps).astype(np.int64), f0, f1 - 1) - f0
        # gazed: the object whose box holds the gaze most often
        gazed = -1
        if len(st):
            b = boxes[:, sf]  # (n_obj, k, 4)
            with np.errstate(invalid="ignore"):
                inside = (b[..., 0] <= sx) & (sx <= b[..., 2]) & (b[..., 1] <= sy) & (sy <= b[..., 3])
            counts = inside.sum(axis=1)
            if counts.max() > 0:
                gazed = int(np.argmax(counts))
        # the gaze point per frame (mean of its samples; the episode centre where a frame has none)
        cnt = np.bincount(sf, minlength=nf)[:nf] if len(st) else np.zeros(nf)
        gx = np.full(nf, float(ep["x"]) if ep.get("x") is not None else 0.5)
        gy = np.full(nf, float(ep["y"]) if ep.get("y") is not None else 0.5)
        if len(st):
            has = cnt > 0
            gx[has] = np.bincount(sf, weights=sx, minlength=nf)[:nf][has] / cnt[has]
            gy[has] = np.bincount(sf, weights=sy, minlength=nf)[:nf][has] / cnt[has]
        px, py = gx * ann.width, gy * ann.height
        bx0, by0 = boxes[..., 0] * ann.width, boxes[..., 1] * ann.height
        bx1, by1 = boxes[..., 2] * ann.width, boxes[..., 3] * ann.height
        dx = np.maximum(np.maximum(bx0 - px, px - bx1), 0)
        dy = np.maximum(np.maximum(by0 - py, py - by1), 0)
        with np.errstate(invalid="ignore"):
            in_fov = (dx * dx + dy * dy) <= r_px * r_px  # NaN (not visible) compares False
        visible = ~np.isnan(boxes[..., 0])
        half = nf / 2
        fov = in_fov.sum(axis=1) >= half
        out = visible.sum(axis=1) >= half
        eid = ep["episode_id"]
        if gazed >= 0:
            rows.append({"episode_id": eid, "name": ann.names[gazed], "role": "gazed", "attributes": attrs[gazed]})
        taken = {gazed}
        for role, mask in (("fov", fov), ("outside", out)):
            ks = sorted((k for k in np.flatnonzero(mask).tolist() if k not in taken), key=lambda k: ann.names[k])
            for k in ks:
                rows.append({"episode_id": eid, "name": ann.names[k], "role": role, "attributes": attrs[k]})
            taken.update(ks)
    return rows


class AnnotationLabeller(Labeller):
    """Labels episodes from an annotation file with per-frame object boxes (the synthetic world's truth.json)."""

    name = "annotation"

    def label(self, store, video: dict, episodes: list[dict], options: dict) -> list[dict]:
        ann = load_annotation(_truth_path(video, options))
        radius = options.get("fov_radius")
        if radius is None:
            radius = ann.fov_radius
        try:
            radius = float(radius)
            if not 0 < radius <= 1:
                raise ValueError
        except (TypeError, ValueError):
            raise InputError("option fov_radius", f"{radius!r} is not a number in (0, 1]") from None
        g = store.con.execute(
            "SELECT t_s, x, y FROM gaze WHERE video_id = ? AND valid AND x IS NOT NULL AND y IS NOT NULL "
            "ORDER BY t_s", [video["video_id"]]
        ).fetchnumpy()
        t, x, y = (np.asarray(g[c], dtype=np.float64) for c in ("t_s", "x", "y"))
        return label_episodes(ann, episodes, t, x, y, radius)
