"""``eval --protocol reference``: the StreamGaze reference harness's clip bounds, frame sampling, image size and
decoding defaults, for runs whose numbers should sit next to the paper's (docs/eval.md, "Protocols").

Our own protocol (``ours``, the default) lives in `streamgaze.eval.frames` and the question's ``clip``; this
module holds only what the reference does differently, so the runner asks it one question per request:

- clip: past [0, ts], present [max(0, ts - 60), ts], proactive [0, realtime] per test point, ts the question time;
- frames: with ``s = int(start * fps)`` and ``e = int(end * fps)``, ``linspace(s, e - 1, n)`` cast to int when
  ``e - s > n``, else every frame in [s, e) (so none when the clip holds no whole frame);
- images: long side at most 2048 px (aspect kept, sizes truncated as the reference did), JPEG quality 85;
- decoding: temperature 0.7, top_p 0.8, max_tokens 1536 unless given.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from streamgaze.tasks.spec import family_of

PROTOCOLS = ("ours", "reference")

#: decoding defaults per protocol (None: not sent); a value given on the command line wins
DECODING = {
    "ours": {"temperature": 0.0, "top_p": None, "max_tokens": 16},
    "reference": {"temperature": 0.7, "top_p": 0.8, "max_tokens": 1536},
}
#: the prompt style a protocol implies when ``--prompt-style`` is not given
PROMPT_STYLE = {"ours": "windowed", "reference": "reference"}

MAX_SIDE = 2048
JPEG_QUALITY = 85
PRESENT_WINDOW_S = 60.0


def reference_clip(item) -> tuple[float, float]:
    """The clip the reference showed for one request (an `streamgaze.eval.runner.Item`): a proactive test point
    [0, t_point]; a present question [max(0, ts - 60), ts]; any other [0, ts]. ts is the question's ``time_s``
    (a released file's ``time_stamp``), or the end of its clip when it has none."""
    if item.proactive:
        return (0.0, float(item.t_s))
    q = item.q
    ts = q.get("time_s")
    ts = float(q["clip"][1]) if ts is None else float(ts)
    family = q.get("family") or family_of(q["task"])
    if family == "present":
        return (round(max(0.0, ts - PRESENT_WINDOW_S), 3), ts)  # to the millisecond, as question files give times
    return (0.0, ts)


def with_reference_clip(item):
    """The same request with the reference's clip (the runner's items carry our ``clip``)."""
    return replace(item, clip=reference_clip(item))


def reference_indices(start: float, end: float, fps: float, n: int = 16) -> list[int]:
    """The reference's frame indices for [start, end]: ``s = int(start * fps)``, ``e = int(end * fps)``; the ``n``
    frames ``linspace(s, e - 1, n)`` cast to int when ``e - s > n``, else every frame in [s, e). Every index is
    below ``end * fps``: no frame after the question time."""
    s, e = int(start * fps), int(end * fps)
    if e - s > n:
        return [int(i) for i in np.linspace(s, e - 1, n).astype(int)]
    return list(range(s, e))


def clip_indices(clip: tuple[float, float], fps: float, n_frames: int, n: int = 16) -> list[int]:
    """`reference_indices` kept inside the video: an index past its last frame reads the last frame (the reference
    failed the whole question there; a released clip never runs past its video)."""
    idx = reference_indices(clip[0], clip[1], fps, n)
    if n_frames > 0:
        idx = [min(i, n_frames - 1) for i in idx]
    return idx


def fit_long_side(frame: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """``frame`` shrunk so its long side is at most ``max_side`` (aspect kept, each side truncated to an integer
    as the reference computed it; Lanczos, its filter); unchanged when already small enough."""
    h, w = frame.shape[:2]
    if max(h, w) <= max_side:
        return frame
    import cv2

    ratio = max_side / max(h, w)
    return cv2.resize(frame, (max(1, int(w * ratio)), max(1, int(h * ratio))), interpolation=cv2.INTER_LANCZOS4)


def jpegs(video, indices: list[int], overlay: bool) -> list[bytes]:
    """JPEG bytes (quality 85) of frames ``indices`` of a `streamgaze.eval.frames.VideoContext`, in sorted order:
    the gaze drawn first at the video's own size (as the released gaze_viz videos were drawn; never on a video
    that already shows it), then `fit_long_side`. Encoded in the thread that decoded each frame."""
    import cv2

    from streamgaze.gaze.overlay import overlay_frame

    def encode(frame: np.ndarray, i: int) -> bytes:
        if overlay and not video.gaze_drawn:
            frame = overlay_frame(frame, video.track, i, video.fps, video.fov_radius)
        ok, buf = cv2.imencode(".jpg", fit_long_side(frame), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return buf.tobytes()

    if not indices:
        return []
    encoded = video.raw_frames(indices, prepare=encode)
    return [encoded[i] for i in sorted(indices)]


def frames_info(n: int) -> dict:
    """run.json's ``frames`` entry for the reference protocol."""
    return {"n": n, "policy": "reference: linspace(int(start*fps), int(end*fps) - 1, n) cast to int when the clip "
                              "holds more than n frames, else every frame in it",
            "max_side_px": MAX_SIDE, "jpeg_quality": JPEG_QUALITY, "format": "jpeg"}


def resolve(protocol: str, prompt_style: str | None, temperature: float | None, top_p: float | None,
            max_tokens: int | None) -> dict:
    """The effective prompt style and decoding settings: each value given, else the protocol's default."""
    given = {"prompt_style": prompt_style, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
    defaults = {"prompt_style": PROMPT_STYLE[protocol], **DECODING[protocol]}
    return {k: (defaults[k] if v is None else v) for k, v in given.items()}
