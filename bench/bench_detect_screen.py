"""Screen-tracker fixation defaults: sample-level kappa and speed against pymovements, in one run (a script).

    python bench/bench_detect_screen.py [--lund DIR] [--seconds 120] [--speed-samples 10000000]

"Stable" = fixation or smooth pursuit (REMoDNaV: FIXA or PURS) vs everything else, Cohen's kappa over the samples
the reference judges (`streamgaze.gaze.agreement`). Three labellings of ``ivt`` are compared: the head-mounted
defaults (what every recording got before device classes), the screen defaults (``device_defaults["screen"]``,
what `run_fixations` applies to a screen tracker), and REMoDNaV (the peer, when installed).

(d) ``--lund DIR``: the Lund 2013 human-coded 500 Hz set (Andersson et al. 2017; its ``*.mat`` files below DIR,
    read as `bench_agreement.read_lund_mat` reads them; GPL data, kept outside the repo; needs scipy): kappa per
    category (images / dots / video), each detector against each coder (mean), beside the issue's targets.
(a) The shared EyeLink EDF (1000 Hz) against EyeLink's online parser (not human coding; see bench_agreement.py).
(s) Synthetic 500 Hz screen recordings with pursuit and post-saccadic oscillations (`screen_truth`; not human
    coding: a model, and the PSO step was written for it, so read it as a check, not as the target).
(t) The Tobii TX300 fixtures (300 Hz): no reference; agreement of each labelling with REMoDNaV.
Speed: ``detect(detector="ivt")`` with the screen defaults on 500 Hz samples vs pymovements' I-VT (its
``pos2vel`` velocities and ``events.ivt``, the conversion to degrees included) on the first 200 k of them;
skipped when pymovements is not installed (``pip install 'streamgaze[bench]'``).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from screen_truth import screen_recording  # noqa: E402

from streamgaze.gaze.agreement import cohen_kappa, sample_labels  # noqa: E402
from streamgaze.gaze.fixations import detect, get_detector  # noqa: E402
from streamgaze.gaze.fixations.device import SCREEN, class_defaults  # noqa: E402
from streamgaze.gaze.ingest import LoadContext, get_loader  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGETS = {"images": 0.80, "dots": 0.78, "video": 0.80}
REPORTED = {"ivt (issue)": (0.746, 0.741, 0.751), "REMoDNaV (paper)": (0.83, 0.76, 0.83),
            "two humans": (0.90, 0.81, 0.88)}


def labellings(have_remodnav: bool) -> dict:
    screen = class_defaults(get_detector("ivt"), SCREEN)
    out = {"ivt head-mounted defaults": ("ivt", {}), "ivt screen defaults": ("ivt", screen)}
    if have_remodnav:
        out["remodnav"] = ("remodnav", {})
    return out


def stable(name, params, t, x, y, valid, deg_per_unit):
    return sample_labels(t, detect(t, x, y, valid, detector=name, deg_per_unit=deg_per_unit, **params))


def lund_part(root: Path, labs: dict) -> None:
    from bench_agreement import LUND_JUDGED, LUND_STABLE, read_lund_mat

    files = sorted(root.rglob("*.mat"))
    if not files:
        print(f"(d) skipped: no .mat files below {root}\n")
        return
    trials = [read_lund_mat(f) for f in files]
    print(f"## (d) Lund 2013 human coders, {len(files)} coded files (500 Hz)\n")
    print("| labelling | " + " | ".join(TARGETS) + " |\n|---|---|---|---|")
    for label, (name, params) in labs.items():
        cells = []
        for cat in TARGETS:
            rows = [tr for tr in trials if tr["category"] == cat]
            coders = sorted({tr["coder"] for tr in rows})
            ks = []
            for c in coders:
                mine = [tr for tr in rows if tr["coder"] == c]
                lab = np.concatenate([stable(name, params, tr["t"], tr["x"], tr["y"], np.isfinite(tr["x"]),
                                             tr["deg_per_px"]) for tr in mine])
                ref = np.concatenate([np.isin(tr["label"], LUND_STABLE) for tr in mine])
                judged = np.concatenate([np.isfinite(tr["x"]) & np.isin(tr["label"], LUND_JUDGED) for tr in mine])
                ks.append(cohen_kappa(lab, ref, judged))
            cells.append(f"{np.mean(ks):.3f}" if ks else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")
    for label, vals in REPORTED.items():
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    print("| target | " + " | ".join(f"{v:.2f}" for v in TARGETS.values()) + " |\n")


def edf_part(labs: dict) -> None:
    path = SHARED / "eyelink" / "test_raw.edf"
    try:
        from streamgaze_builtin.loaders.eyelink import edf_px_per_deg, read_edf

        edf = read_edf(path)
    except Exception as exc:  # no file or no eyelinkio: this part only
        print(f"(a) skipped: {exc}\n")
        return
    g = get_loader("eyelink-edf")(LoadContext(paths=[path]))["gaze"]
    W, H = (float(v) for v in edf["info"]["screen_coords"])
    t = g["t_s"].to_numpy()
    x = np.asarray(g["x"].to_numpy(zero_copy_only=False), np.float64) * W
    y = np.asarray(g["y"].to_numpy(zero_copy_only=False), np.float64) * H
    valid = g["valid"].to_numpy(zero_copy_only=False)
    fx, bl = edf["discrete"]["fixations"], edf["discrete"]["blinks"]
    ref = sample_labels(t, np.column_stack((fx["stime"], fx["etime"])))
    judged = valid & ~sample_labels(t, np.column_stack((bl["stime"], bl["etime"])))
    dpp = 1.0 / edf_px_per_deg(edf)
    print(f"## (a) EyeLink EDF vs EyeLink's online parser (1000 Hz, {judged.sum()} judged samples)\n")
    print("| labelling | kappa | stable share |\n|---|---|---|")
    for label, (name, params) in labs.items():
        lab = stable(name, params, t, x, y, valid, dpp)
        print(f"| {label} | {cohen_kappa(lab, ref, judged):.3f} | {lab[judged].mean():.1%} |")
    print()


def synthetic_part(labs: dict, seconds: float, seeds=(0, 1, 2)) -> None:
    print(f"## (s) synthetic 500 Hz screen recordings, {len(seeds)} x {seconds:g} s per kind (model truth)\n")
    print("| labelling | " + " | ".join(TARGETS) + " |\n|---|---|---|---|")
    data = {k: [screen_recording(k, seconds, s) for s in seeds] for k in TARGETS}
    for label, (name, params) in labs.items():
        cells = []
        for kind, recs in data.items():
            lab, ref, judged = [], [], []
            for t, x, y, valid, truth in recs:
                lab.append(stable(name, params, t, x / 40.0, y / 40.0, valid, 40.0))
                ref.append(np.isin(truth, (0, 3)))
                judged.append(truth != 4)
            cells.append(f"{cohen_kappa(*(np.concatenate(v) for v in (lab, ref, judged))):.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()


def tobii_part(labs: dict) -> None:
    files = sorted((SHARED / "tobii_tx300").glob("*.tsv"))
    if not files or "remodnav" not in labs:
        print("(t) skipped: needs the Tobii fixtures and remodnav\n")
        return
    print("## (t) Tobii TX300 fixtures (300 Hz), agreement with REMoDNaV (no human reference)\n")
    print("| labelling | " + " | ".join(f.name for f in files) + " |\n|---|" + "---|" * len(files))
    from streamgaze.gaze.fixations.device import SCREEN_ASSUMED_WIDTH_DEG as width

    gaze = [get_loader("tobii-tx300")(LoadContext(paths=[f]))["gaze"] for f in files]
    arrays = [tuple(np.asarray(g[c].to_numpy(zero_copy_only=False), np.float64 if c != "valid" else bool)
                    for c in ("t_s", "x", "y", "valid")) for g in gaze]
    peer = [stable("remodnav", {}, t, x, y, v, width) for t, x, y, v in arrays]
    for label, (name, params) in labs.items():
        if name == "remodnav":
            continue
        cells = [f"{cohen_kappa(stable(name, params, t, x, y, v, width), p, v):.3f}"
                 for (t, x, y, v), p in zip(arrays, peer)]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def speed_part(n: int, peer_n: int = 200_000) -> None:
    t, xd, yd, valid, _ = screen_recording("video", n / 500.0, seed=7)
    x, y = xd / 40.0, yd / 40.0
    screen = class_defaults(get_detector("ivt"), SCREEN)
    ours = best(lambda: detect(t, x, y, valid, detector="ivt", deg_per_unit=40.0, **screen), 3)
    head = best(lambda: detect(t, x, y, valid, detector="ivt", deg_per_unit=40.0), 3)
    print(f"## speed: {t.size:,} samples at 500 Hz, best of 3, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(f"- ivt screen defaults: {t.size / ours / 1e6:.0f} M samples/s ({ours * 1000:.0f} ms); head-mounted "
          f"defaults: {t.size / head / 1e6:.0f} M samples/s")
    try:
        import pymovements as pm
        from pymovements.transforms.numpy import pos2vel
    except ImportError:
        print("- pymovements not installed (pip install 'streamgaze[bench]'): no ratio\n")
        return
    m = min(peer_n, t.size)
    xs, ys = np.nan_to_num(xd[:m]), np.nan_to_num(yd[:m])
    ts = np.round(t[:m] * 1000).astype(np.int64)

    def pm_ivt():
        pos = np.column_stack((xs / 40.0, ys / 40.0)) * 40.0  # degrees, as ours converts
        vel = pos2vel(pos, sampling_rate=500.0, method="neighbors")
        return pm.events.ivt(vel, ts, minimum_duration=60, velocity_threshold=40.0)

    peer = best(pm_ivt, 3)
    ratio = (t.size / ours) / (m / peer)
    print(f"- pymovements {getattr(pm, '__version__', '?')} I-VT: {m / peer / 1e6:.1f} M samples/s on the first {m:,}")
    print(f"- **ivt screen defaults / pymovements I-VT: {ratio:.1f}x** (target 20x)\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lund", type=Path, default=None, metavar="DIR", help="the Lund 2013 .mat files (human coders)")
    ap.add_argument("--seconds", type=float, default=120.0, help="synthetic seconds per kind and seed")
    ap.add_argument("--speed-samples", type=int, default=10_000_000)
    args = ap.parse_args()
    labs = labellings(importlib.util.find_spec("remodnav") is not None)
    print(f"screen defaults of ivt: {class_defaults(get_detector('ivt'), SCREEN)}\n")
    if args.lund is not None:
        lund_part(args.lund, labs)
    else:
        print("(d) Lund 2013 human coders: not measured (pass --lund DIR with the set's .mat files; not on this "
              "machine)\n")
    edf_part(labs)
    synthetic_part(labs, args.seconds)
    tobii_part(labs)
    speed_part(args.speed_samples)


if __name__ == "__main__":
    main()
