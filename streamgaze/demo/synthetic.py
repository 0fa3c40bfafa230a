"""The synthetic demo recording: a rendered kitchen scene, a head-mounted gaze trace and an action timeline.

`make_world(out_dir, seed)` writes, deterministically from ``seed``:

- ``video.mp4``: a 640x480, 24 fps scene video cropped from a kitchen panorama (2.5x the frame width) by a
  camera that pans slowly (head motion, under ~6 deg/s), so objects enter and leave the frame;
- ``gaze_positions.csv`` + ``world_timestamps.csv``: a 120 Hz gaze trace in the Pupil Player export format
  (Pupil clock, ``norm_pos`` with a bottom-left origin, blinks as rows with confidence < 0.6);
- ``actions.csv`` (``t_start,t_end,label``): actions that start 1.5-3 s after the wearer starts dwelling on
  their object (gaze leads the hand);
- ``truth.json``: every object's name, attributes and box per frame, the true gaze (top-left origin) with its
  target object and event per sample, the true dwells and the actions. Every later stage is checked against it.

Only ``numpy.random.default_rng(seed)`` is used; text files are byte-identical for the same arguments.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamgaze.gaze.geometry import FOV_RADIUS

TRUTH_VERSION = 1
PANORAMA_FACTOR = 2.5
GAZE_FILE = "gaze_positions.csv"
WORLD_TIMESTAMPS_FILE = "world_timestamps.csv"
PUPIL_HEADER = (
    "gaze_timestamp,world_index,confidence,norm_pos_x,norm_pos_y,base_data,gaze_point_3d_x,gaze_point_3d_y,"
    "gaze_point_3d_z,eye_center0_3d_x,eye_center0_3d_y,eye_center0_3d_z,gaze_normal0_x,gaze_normal0_y,"
    "gaze_normal0_z,eye_center1_3d_x,eye_center1_3d_y,eye_center1_3d_z,gaze_normal1_x,gaze_normal1_y,"
    "gaze_normal1_z"
)
EVENTS = ("fixation", "saccade", "blink", "glance")
FIX, SAC, BLINK, GLANCE = range(4)

# name, color, shape, material, verbs. Names are pairwise free of whole-word sub-phrase conflicts.
CATALOG: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("mug", "blue", "cylindrical", "ceramic", ("pick up", "rinse", "put down", "wipe")),
    ("kettle", "silver", "round", "metal", ("pick up", "pour", "open", "put down")),
    ("bowl", "green", "round", "ceramic", ("pick up", "rinse", "move")),
    ("plate", "white", "flat", "ceramic", ("pick up", "rinse", "put down", "wipe")),
    ("knife", "silver", "flat", "metal", ("pick up", "rinse", "put down")),
    ("cutting board", "brown", "rectangular", "wood", ("wipe", "move", "rinse")),
    ("sponge", "yellow", "rectangular", "plastic", ("pick up", "put down", "rinse")),
    ("toaster", "red", "rectangular", "metal", ("move", "wipe", "open")),
    ("spoon", "brown", "oval", "wood", ("pick up", "rinse", "put down")),
    ("frying pan", "black", "round", "metal", ("pick up", "wipe", "move", "rinse")),
    ("bottle", "green", "cylindrical", "glass", ("pick up", "open", "pour")),
    ("jar", "yellow", "cylindrical", "glass", ("open", "pick up", "put down")),
    ("teapot", "purple", "round", "ceramic", ("pick up", "pour", "open")),
    ("colander", "orange", "round", "plastic", ("rinse", "pick up", "move")),
    ("whisk", "silver", "oval", "metal", ("pick up", "rinse")),
    ("tray", "black", "rectangular", "plastic", ("move", "wipe", "pick up")),
    ("towel", "pink", "rectangular", "fabric", ("pick up", "put down")),
    ("grater", "gray", "rectangular", "metal", ("pick up", "rinse")),
    ("salt shaker", "white", "cylindrical", "glass", ("pick up", "put down")),
    ("rolling pin", "beige", "cylindrical", "wood", ("pick up", "move")),
]
FIXTURES: list[tuple[str, str, str, str, tuple[str, ...], tuple[int, int]]] = [
    ("sink", "silver", "rectangular", "metal", ("wipe", "rinse"), (190, 95)),
    ("stove", "black", "square", "metal", ("wipe", "turn on"), (160, 115)),
]
BGR = {
    "blue": (200, 100, 30), "silver": (195, 190, 185), "green": (60, 160, 50), "white": (240, 240, 238),
    "brown": (40, 85, 140), "yellow": (40, 215, 235), "red": (40, 40, 205), "black": (45, 40, 40),
    "purple": (150, 60, 135), "orange": (30, 140, 245), "pink": (185, 140, 245), "gray": (125, 125, 125),
    "beige": (175, 210, 228),
}
SIZES = {  # (w range, h range) in panorama pixels
    "cylindrical": ((50, 68), (72, 96)),
    "round": ((76, 104), (64, 84)),
    "flat": ((92, 120), (32, 46)),
    "rectangular": ((80, 118), (52, 78)),
    "oval": ((42, 58), (64, 88)),
    "square": ((100, 110), (100, 110)),
}


@dataclass(frozen=True)
class World:
    """Paths of one synthetic recording."""

    root: Path
    video: Path
    gaze: Path
    world_timestamps: Path
    actions: Path
    truth: Path
    video_id: str


def world_paths(out_dir: str | Path, seed: int) -> World:
    root = Path(out_dir)
    return World(root, root / "video.mp4", root / GAZE_FILE, root / WORLD_TIMESTAMPS_FILE, root / "actions.csv",
                 root / "truth.json", f"synthetic_s{seed}")


# ----------------------------------------------------------------------------------------------------- layout
def _layout(rng: np.random.Generator, pw: int, ph: int) -> list[dict]:
    """Objects with their panorama boxes (pixels); fixtures first, then 12-16 movable objects."""
    n_movable = int(rng.integers(12, 17))
    picks = sorted(rng.choice(len(CATALOG), size=n_movable, replace=False).tolist())
    specs = [dict(name=n, color=c, shape=s, material=m, verbs=v, size=sz, fixture=True) for n, c, s, m, v, sz in FIXTURES]
    specs += [dict(name=CATALOG[i][0], color=CATALOG[i][1], shape=CATALOG[i][2], material=CATALOG[i][3],
                   verbs=CATALOG[i][4], size=None, fixture=False) for i in picks]
    placed: list[dict] = []
    gap = 20

    def free(box):
        return all(box[0] >= b[2] + gap or box[2] + gap <= b[0] or box[1] >= b[3] + gap or box[3] + gap <= b[1]
                   for b in (p["box"] for p in placed))

    for spec in specs:
        for attempt in range(3000):
            if spec["size"]:
                w, h = spec["size"]
                y0 = int(rng.integers(235, 300))
                x0 = int(rng.integers(24, pw - 24 - w))
            else:
                (wl, wh), (hl, hh) = SIZES[spec["shape"]]
                w, h = int(rng.integers(wl, wh + 1)), int(rng.integers(hl, hh + 1))
                shelf = rng.random() < 0.25
                if shelf:  # standing on the shelf
                    y0 = 188 - h - int(rng.integers(0, 6))
                else:
                    y0 = int(rng.integers(222, ph - 50 - h))
                x0 = int(rng.integers(24, pw - 24 - w))
                if placed and attempt < 2500 and rng.random() < 0.8:
                    # next to an object already placed, so the field of view around one holds others
                    nb = placed[int(rng.integers(len(placed)))]["box"]
                    g = int(rng.integers(gap + 2, gap + 28))
                    x0 = nb[2] + g if rng.random() < 0.5 else nb[0] - g - w
                    if not shelf and rng.random() < 0.4:
                        x0 = int(rng.integers(nb[0] - w // 2, nb[2] - w // 2 + 1))
                        y0 = nb[3] + g if rng.random() < 0.5 else nb[1] - g - h
                        if y0 < 222 or y0 + h > ph - 50:
                            continue
                    if x0 < 24 or x0 + w > pw - 24:
                        continue
            box = (x0, y0, x0 + w, y0 + h)
            if free(box):
                placed.append({**spec, "box": box})
                break
        else:  # pragma: no cover - the scene is sparse enough
            raise RuntimeError(f"cannot place {spec['name']}")
    placed.sort(key=lambda o: (o["box"][0], o["box"][1]))
    for k, obj in enumerate(placed):
        obj["id"] = f"o{k + 1:02d}"
    return placed


# ----------------------------------------------------------------------------------------------------- render
def _render_panorama(rng: np.random.Generator, objects: list[dict], pw: int, ph: int) -> np.ndarray:
    yy, xx = np.mgrid[0:ph, 0:pw]
    img = np.empty((ph, pw, 3), np.float32)
    wall = np.array([205, 222, 232], np.float32)
    counter = np.array([110, 145, 170], np.float32)
    tiles = (((xx % 48) < 2) | ((yy % 48) < 2)).astype(np.float32)
    img[:] = wall
    img -= tiles[..., None] * 28
    grain = 12 * np.sin(yy * 0.35 + 3 * np.sin(xx * 0.013)) + 6 * np.sin(xx * 0.05 + yy * 0.02)
    below = yy >= 200
    img[below] = counter + grain[below][:, None]
    img += rng.normal(0, 4, size=(ph, pw, 1)).astype(np.float32)
    img = cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (3, 3), 0)  # mild texture, cheap to encode
    cv2.rectangle(img, (0, 188), (pw, 199), (50, 90, 130), -1)  # shelf
    cv2.line(img, (0, 200), (pw, 200), (60, 80, 95), 2)
    # a window and cabinets so the background is not uniform
    for x in range(60, pw, 420):
        cv2.rectangle(img, (x, 20), (x + 150, 110), (235, 215, 170), -1)
        cv2.rectangle(img, (x, 20), (x + 150, 110), (90, 90, 90), 3)
        cv2.line(img, (x + 75, 20), (x + 75, 110), (90, 90, 90), 2)
    for obj in objects:
        _draw_object(img, obj)
    return img


def _draw_object(img: np.ndarray, obj: dict) -> None:
    x0, y0, x1, y1 = obj["box"]
    w, h = x1 - x0, y1 - y0
    colour = BGR[obj["color"]]
    dark = tuple(int(c * 0.6) for c in colour)
    shape = obj["shape"]
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    cv2.ellipse(img, (cx + 4, y1 - 2), (w // 2, max(h // 8, 4)), 0, 0, 360, (70, 85, 95), -1)  # shadow
    mask = np.zeros(img.shape[:2], np.uint8)

    def body(target, col, thick):
        if shape == "cylindrical":
            ry = max(h // 8, 4)
            cv2.rectangle(target, (x0, y0 + ry), (x1 - 1, y1 - 1 - ry), col, thick)
            cv2.ellipse(target, (cx, y1 - 1 - ry), (w // 2, ry), 0, 0, 180, col, thick)
            cv2.ellipse(target, (cx, y0 + ry), (w // 2, ry), 0, 0, 360, col, thick)
        elif shape in ("rectangular", "square"):
            cv2.rectangle(target, (x0, y0), (x1 - 1, y1 - 1), col, thick)
        else:  # round, oval, flat, spherical
            cv2.ellipse(target, (cx, cy), (w // 2 - 1, h // 2 - 1), 0, 0, 360, col, thick)

    body(mask, 255, -1)
    body(img, colour, -1)
    sub = img[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1] > 0
    sy, sx = np.mgrid[0:h, 0:w]
    stripes = ((sx + sy) // 7) % 2 == 0 if obj["material"] in ("wood", "fabric") else ((sx // 9 + sy // 9) % 2 == 0)
    sel = m & stripes
    sub[sel] = (sub[sel].astype(np.float32) * 0.85).astype(np.uint8)
    body(img, dark, 2)
    if obj["material"] in ("ceramic", "glass", "metal"):
        cv2.ellipse(img, (x0 + w // 3, y0 + h // 3), (max(w // 10, 3), max(h // 7, 3)), 0, 0, 360,
                    tuple(min(255, c + 60) for c in colour), -1)
    if obj["name"] == "sink":
        cv2.rectangle(img, (x0 + 12, y0 + 12), (x1 - 12, y1 - 12), (120, 120, 115), -1)
    if obj["name"] == "stove":
        for dx, dy in ((0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7)):
            cv2.circle(img, (x0 + int(dx * w), y0 + int(dy * h)), w // 7, (30, 30, 160), 3)
    text = obj["name"]
    scale = 0.42
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > w - 4:
        scale *= (w - 4) / tw
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    lum = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (20, 20, 20) if lum > 130 else (245, 245, 245)
    cv2.putText(img, text, (cx - tw // 2, cy + th // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)


# ----------------------------------------------------------------------------------------------------- camera
def _camera(rng: np.random.Generator, pw: int, width: int):
    """Camera offset (panorama pixels) as smooth functions of video time: a slow pan plus a slight bob."""
    half = (pw - width) / 2
    period = float(rng.uniform(95, 120))
    phase = float(rng.uniform(0, 2 * np.pi))
    p2, ph2 = float(rng.uniform(15, 22)), float(rng.uniform(0, 2 * np.pi))
    p3, ph3 = float(rng.uniform(25, 40)), float(rng.uniform(0, 2 * np.pi))

    def cam(t):
        t = np.asarray(t, np.float64)
        cx = half + (half - 45) * np.sin(2 * np.pi * t / period + phase) + 40 * np.sin(2 * np.pi * t / p2 + ph2)
        cy = 20 + 16 * np.sin(2 * np.pi * t / p3 + ph3)
        return np.clip(cx, 0, pw - width), np.clip(cy, 0, 40)

    return cam


# ----------------------------------------------------------------------------------------------------- gaze
class _Gaze:
    """Sample-by-sample gaze builder (top-left normalised image coordinates)."""

    def __init__(self, rng, n, hz, cam_x, cam_y, width, height):
        self.rng, self.n, self.hz = rng, n, hz
        self.cam_x, self.cam_y, self.w, self.h = cam_x, cam_y, width, height
        self.x = np.zeros(n)
        self.y = np.zeros(n)
        self.valid = np.ones(n, bool)
        self.target = np.full(n, -1, np.int32)
        self.event = np.zeros(n, np.int8)
        self.i = 0
        self.pos = (0.5, 0.5)  # last image position

    def img(self, wx, wy, i):
        return (wx - self.cam_x[i]) / self.w, (wy - self.cam_y[i]) / self.h

    def world(self, x, y, i):
        return x * self.w + self.cam_x[i], y * self.h + self.cam_y[i]

    def left(self):
        return self.n - self.i

    def saccade(self, wx, wy, target=-1, min_ms=20, max_ms=60):
        """Jump to world point (wx, wy), landing at the end of the saccade."""
        if self.left() <= 0:
            return
        x1, y1 = self.img(wx, wy, min(self.i + 3, self.n - 1))
        amp = np.hypot((x1 - self.pos[0]) * self.w, (y1 - self.pos[1]) * self.h) / 7.0  # ~7 px per degree
        dur = min(max_ms, max(min_ms, 20 + 2.2 * amp)) / 1000
        k = min(max(2, int(round(dur * self.hz))), self.left())
        s = np.arange(1, k + 1) / (k + 1)
        prof = 10 * s**3 - 15 * s**4 + 6 * s**5  # minimum jerk
        sl = slice(self.i, self.i + k)
        self.x[sl] = self.pos[0] + (x1 - self.pos[0]) * prof
        self.y[sl] = self.pos[1] + (y1 - self.pos[1]) * prof
        self.event[sl] = SAC
        self.target[sl] = target
        self.i += k
        self.pos = (self.x[self.i - 1], self.y[self.i - 1])

    def fixate(self, wx, wy, dur_s, target=-1, event=FIX):
        """Hold a world point (VOR: the image position follows the camera) with fixational jitter."""
        k = min(max(1, int(round(dur_s * self.hz))), self.left())
        if k <= 0:
            return
        sl = slice(self.i, self.i + k)
        drift = np.cumsum(self.rng.normal(0, 0.0004, size=(k, 2)), axis=0)
        drift -= drift.mean(axis=0)
        jitter = self.rng.normal(0, 0.0015, size=(k, 2)) + np.clip(drift, -0.004, 0.004)
        self.x[sl] = (wx - self.cam_x[sl]) / self.w + jitter[:, 0]
        self.y[sl] = (wy - self.cam_y[sl]) / self.h + jitter[:, 1]
        self.event[sl] = event
        self.target[sl] = target
        self.i += k
        self.pos = (self.x[self.i - 1], self.y[self.i - 1])

    def blink(self, dur_s):
        k = min(max(1, int(round(dur_s * self.hz))), self.left())
        sl = slice(self.i, self.i + k)
        self.x[sl] = self.pos[0]
        self.y[sl] = self.pos[1]
        self.valid[sl] = False
        self.event[sl] = BLINK
        self.target[sl] = -1
        self.i += k


def _inner_point(rng, box, shrink=0.25):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return (float(rng.uniform(x0 + shrink * w, x1 - shrink * w)), float(rng.uniform(y0 + shrink * h, y1 - shrink * h)))


# ----------------------------------------------------------------------------------------------------- main
def make_world(out_dir: str | Path, seed: int = 0, minutes: float = 3.0, *, fps: int = 24, gaze_hz: int = 120,
               width: int = 640, height: int = 480, video: bool = True) -> World:
    """Write the synthetic recording of ``seed`` into ``out_dir`` and return its paths.

    ``video=False`` skips encoding ``video.mp4`` (most of the time; the other files are unchanged), for tests.
    """
    world = world_paths(out_dir, seed)
    world.root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pw, ph = int(round(width * PANORAMA_FACTOR)), height + 40
    objects = _layout(rng, pw, ph)
    pano = _render_panorama(rng, objects, pw, ph)
    cam = _camera(rng, pw, width)
    clock_offset = round(float(rng.uniform(1000, 5000)), 3)

    n_frames = max(1, int(round(minutes * 60 * fps)))
    duration = n_frames / fps
    frame_t = np.arange(n_frames) / fps
    fcx, fcy = cam(frame_t)
    fcx_i, fcy_i = np.rint(fcx).astype(int), np.rint(fcy).astype(int)
    # the video depends only on the panorama and the camera: encode it on another core meanwhile
    video_errors: list[BaseException] = []

    def encode() -> None:
        try:
            _write_video(world.video, pano, fcx_i, fcy_i, width, height, fps)
        except BaseException as exc:  # re-raised below
            video_errors.append(exc)

    video_thread = threading.Thread(target=encode, name="synthetic-video", daemon=True)
    if video:
        video_thread.start()

    # boxes per frame (pixels in the frame), visibility and "fully inside with a margin"
    pbox = np.array([o["box"] for o in objects], np.float64)  # (n_obj, 4)
    fb = np.empty((len(objects), n_frames, 4))
    fb[:, :, 0] = pbox[:, None, 0] - fcx_i[None]
    fb[:, :, 2] = pbox[:, None, 2] - fcx_i[None]
    fb[:, :, 1] = pbox[:, None, 1] - fcy_i[None]
    fb[:, :, 3] = pbox[:, None, 3] - fcy_i[None]
    clipped = fb.copy()
    clipped[..., [0, 2]] = np.clip(clipped[..., [0, 2]], 0, width)
    clipped[..., [1, 3]] = np.clip(clipped[..., [1, 3]], 0, height)
    area = (pbox[:, 2] - pbox[:, 0]) * (pbox[:, 3] - pbox[:, 1])
    vis_area = np.clip(clipped[..., 2] - clipped[..., 0], 0, None) * np.clip(clipped[..., 3] - clipped[..., 1], 0, None)
    visible = vis_area >= 0.5 * area[:, None]
    margin = 12
    inside = (fb[..., 0] >= margin) & (fb[..., 2] <= width - margin) & (fb[..., 1] >= margin) & (fb[..., 3] <= height - margin)

    # gaze
    n_gaze = int(np.floor(duration * gaze_hz))
    gt = np.arange(n_gaze) / gaze_hz
    gcx, gcy = cam(gt)
    g = _Gaze(rng, n_gaze, gaze_hz, gcx, gcy, width, height)

    def frames_of(i0, i1):
        return min(int(gt[min(i0, n_gaze - 1)] * fps), n_frames - 1), min(int(np.ceil(gt[min(i1, n_gaze - 1)] * fps)) + 1, n_frames)

    movable = [k for k, o in enumerate(objects) if not o["fixture"]]
    seen_some = [k for k in movable if visible[k].mean() >= 0.1] or movable
    order = rng.permutation(len(seen_some))
    never = sorted(seen_some[j] for j in order[:3])
    gazeable = [k for k in range(len(objects)) if k not in never]
    visits = np.zeros(len(objects), int)
    boxes_px = pbox  # world (panorama) boxes

    def background_point(i):
        """A world point on no object, inside the frame at sample i."""
        f = min(int(gt[i] * fps), n_frames - 1)
        for _ in range(60):
            x, y = float(rng.uniform(0.08, 0.92)), float(rng.uniform(0.08, 0.92))
            px, py = x * width, y * height
            if not np.any((fb[:, f, 0] - 25 <= px) & (px <= fb[:, f, 2] + 25) & (fb[:, f, 1] - 25 <= py) & (py <= fb[:, f, 3] + 25)):
                if np.hypot((x - g.pos[0]) * width, (y - g.pos[1]) * height) > 60:
                    return g.world(x, y, i)
        return g.world(*g.pos, i)

    def free_view(dur_s, allow_glance=True, prev=-1):
        """Gap behaviour: background fixations, maybe a glance at another object, maybe a blink."""
        end = min(g.i + int(round(dur_s * gaze_hz)), n_gaze)
        glanced = blinked = False
        while g.i < end - 2:
            remaining = (end - g.i) / gaze_hz
            if allow_glance and not glanced and remaining > 0.5 and rng.random() < 0.45:
                f0, f1 = frames_of(g.i, min(g.i + gaze_hz, n_gaze - 1))
                cands = [k for k in gazeable if k != prev and inside[k, f0:f1].all()]
                if cands:
                    k = cands[int(rng.integers(len(cands)))]
                    wx, wy = _inner_point(rng, boxes_px[k])
                    g.saccade(wx, wy, -1)
                    g.fixate(wx, wy, min(float(rng.uniform(0.25, 0.8)), remaining - 0.1), k, GLANCE)
                    glanced = True
                    continue
            if not blinked and remaining > 0.4 and rng.random() < 0.12:
                g.blink(float(rng.uniform(0.1, 0.3)))
                blinked = True
                continue
            wx, wy = background_point(g.i)
            g.saccade(wx, wy, -1)
            g.fixate(wx, wy, min(float(rng.uniform(0.2, 0.6)), max((end - g.i) / gaze_hz, 0.05)))

    dwells: list[dict] = []
    free_view(float(rng.uniform(1.0, 2.0)), allow_glance=False)
    prev = -1
    while g.left() > int(3.6 * gaze_hz):
        dur = float(rng.uniform(3.0, 6.5))
        chosen = -1
        for d in (dur, 3.0):
            i1 = g.i + int((d + 0.15) * gaze_hz)
            if i1 >= n_gaze:
                continue
            f0, f1 = frames_of(g.i, i1)
            cands = [k for k in gazeable if k != prev and inside[k, f0:f1].all()]
            if cands:
                w = np.array([1.0 + 1.5 * (0 < visits[k] < 4) for k in cands])
                chosen = cands[int(rng.choice(len(cands), p=w / w.sum()))]
                dur = d
                break
        if chosen < 0:
            free_view(0.5, allow_glance=False, prev=prev)
            continue
        wx, wy = _inner_point(rng, boxes_px[chosen])
        g.saccade(wx, wy, -1)
        start_i = g.i
        end_i = min(start_i + int(round(dur * gaze_hz)), n_gaze)
        blink_at = start_i + int(rng.uniform(0.35, 0.65) * (end_i - start_i)) if rng.random() < 0.3 else -1
        first = True
        while g.i < end_i - 3:
            if not first:
                wx, wy = _inner_point(rng, boxes_px[chosen])
                g.saccade(wx, wy, chosen, min_ms=16, max_ms=30)
            first = False
            fix = min(float(rng.uniform(0.15, 0.6)), (end_i - g.i) / gaze_hz)
            if (end_i - g.i) / gaze_hz - fix < 0.2:
                fix = (end_i - g.i) / gaze_hz
            if 0 <= blink_at and g.i <= blink_at < g.i + int(fix * gaze_hz):
                g.fixate(wx, wy, (blink_at - g.i) / gaze_hz, chosen)
                g.blink(float(rng.uniform(0.1, 0.25)))
                blink_at = -1
                continue
            g.fixate(wx, wy, fix, chosen)
        # the dwell ends with the last sample on the object
        dwells.append({"t_start": gt[start_i], "t_end": gt[g.i - 1] + 1 / gaze_hz, "object": chosen})
        visits[chosen] += 1
        prev = chosen
        free_view(float(rng.uniform(0.5, 2.6)), prev=prev)
    if g.left() > 0:
        free_view(g.left() / gaze_hz + 1, allow_glance=False)
    # leftovers (rounding): hold the last position
    if g.i < n_gaze:
        g.x[g.i:], g.y[g.i:] = g.pos
        g.i = n_gaze

    # actions: gaze leads the hand
    actions: list[dict] = []
    used: set[str] = set()
    last_end = -1.0
    for d in dwells:
        if rng.random() >= 0.7:
            continue
        t0 = d["t_start"] + float(rng.uniform(1.5, 3.0))
        t1 = t0 + float(rng.uniform(2.0, 8.0))
        t0, t1 = round(t0, 3), round(min(t1, duration - 0.1), 3)
        if t0 < last_end + 0.3 or t1 - t0 < 2.0:
            continue
        obj = objects[d["object"]]
        fresh = [v for v in obj["verbs"] if f"{v} {obj['name']}" not in used] or list(obj["verbs"])
        label = f"{fresh[int(rng.integers(len(fresh)))]} {obj['name']}"
        used.add(label)
        actions.append({"t_start": t0, "t_end": t1, "label": label})
        last_end = t1

    # ---- write files
    conf = np.where(g.valid, rng.uniform(0.85, 1.0, n_gaze), rng.uniform(0.0, 0.3, n_gaze))
    px = np.where(g.valid, g.x, np.clip(g.x + rng.normal(0, 0.15, n_gaze), 0, 1))
    py = np.where(g.valid, g.y, np.clip(g.y + rng.normal(0, 0.15, n_gaze), 0, 1))
    world_index = np.clip(np.rint(gt * fps).astype(int), 0, n_frames - 1)
    empty = "," * 16
    lines = [PUPIL_HEADER]
    lines += [f"{clock_offset + t:.6f},{wi},{c:.4f},{x:.6f},{1.0 - y:.6f}{empty}"
              for t, wi, c, x, y in zip(gt.tolist(), world_index.tolist(), conf.tolist(), px.tolist(), py.tolist())]
    world.gaze.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pts = np.rint(np.arange(n_frames) * 90000 / fps).astype(int)
    wl = ["# timestamps [seconds],pts"] + [f"{clock_offset + t:.6f},{p}" for t, p in zip(frame_t.tolist(), pts.tolist())]
    world.world_timestamps.write_text("\n".join(wl) + "\n", encoding="utf-8")
    al = ["t_start,t_end,label"] + [f"{a['t_start']:.3f},{a['t_end']:.3f},{a['label']}" for a in actions]
    world.actions.write_text("\n".join(al) + "\n", encoding="utf-8")

    norm = clipped / np.array([width, height, width, height])
    boxes = {}
    for k, o in enumerate(objects):
        vals = np.round(norm[k], 4).tolist()
        boxes[o["id"]] = [v if vis else None for v, vis in zip(vals, visible[k].tolist())]
    gx = np.round(g.x, 4).tolist()
    gy = np.round(g.y, 4).tolist()
    valid = g.valid.tolist()
    ids = [o["id"] for o in objects]
    truth = {
        "version": TRUTH_VERSION,
        "seed": seed,
        "video": {"fps": fps, "width": width, "height": height, "n_frames": n_frames, "duration_s": round(duration, 4)},
        "gaze_hz": gaze_hz,
        "fov_radius": FOV_RADIUS,
        "pupil_clock_offset_s": clock_offset,
        "objects": [{"id": o["id"], "name": o["name"], "fixture": o["fixture"],
                     "attributes": {"color": o["color"], "shape": o["shape"], "material": o["material"]}}
                    for o in objects],
        "never_gazed": [ids[k] for k in never],
        "frames": {"t_s": np.round(frame_t, 4).tolist(), "boxes": boxes},
        "gaze": {
            "t_s": np.round(gt, 4).tolist(),
            "x": [x if v else None for x, v in zip(gx, valid)],
            "y": [y if v else None for y, v in zip(gy, valid)],
            "valid": valid,
            "target": [ids[t] if t >= 0 else None for t in g.target.tolist()],
            "event": [EVENTS[e] for e in g.event.tolist()],
        },
        "dwells": [{"t_start": round(float(d["t_start"]), 4), "t_end": round(float(d["t_end"]), 4),
                    "object": ids[d["object"]]} for d in dwells],
        "actions": actions,
    }
    world.truth.write_text(json.dumps(truth, separators=(",", ":")) + "\n", encoding="utf-8")
    if video:
        video_thread.join()
    if video_errors:
        raise video_errors[0]
    return world


def _write_video(path: Path, pano: np.ndarray, cx: np.ndarray, cy: np.ndarray, width: int, height: int,
                 fps: int) -> None:
    """Crop each frame from the pre-rendered (textured, noisy) panorama; a small sensor-noise tile moves with
    the frame index so that even frames of a still camera differ."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write mp4v video")
    tile = np.random.default_rng(12345).integers(0, 9, size=(48, 64, 3), dtype=np.uint8)
    try:
        for i, (x, y) in enumerate(zip(cx.tolist(), cy.tolist())):
            frame = np.ascontiguousarray(pano[y:y + height, x:x + width])
            ty, tx = 8 + (i * 7) % (height - 64), 8 + (i * 13) % (width - 80)
            roi = frame[ty:ty + 48, tx:tx + 64]
            cv2.add(roi, tile, dst=roi)
            writer.write(frame)
    finally:
        writer.release()


# ----------------------------------------------------------------------------------------------------- helpers
def load_truth(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def true_gazed_object(truth: dict, t0: float, t1: float) -> str | None:
    """The object id the true gaze targets most often in [t0, t1] (fixation and glance samples), or None."""
    t = np.asarray(truth["gaze"]["t_s"])
    lo, hi = np.searchsorted(t, t0, "left"), np.searchsorted(t, t1, "right")
    counts: dict[str, int] = {}
    for tg in truth["gaze"]["target"][lo:hi]:
        if tg is not None:
            counts[tg] = counts.get(tg, 0) + 1
    if not counts:
        return None
    return max(sorted(counts), key=lambda k: counts[k])


def object_names(truth: dict) -> dict[str, str]:
    """``{object id: name}``."""
    return {o["id"]: o["name"] for o in truth["objects"]}
