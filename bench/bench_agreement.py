"""Sample-level agreement (Cohen's kappa) of our detectors with a reference (a script, not a test).

    /work/venv/bin/python bench/bench_agreement.py [--edf PATH] [--px-per-deg P] [--seeds 0 1 2 3]
        [--minutes 3] [--detectors ivt idt remodnav] [--sweep]

"Stable gaze" = inside an event of the detector (``streamgaze.fixations.detect`` at the detector's defaults;
REMoDNaV's FIXA and PURS) against the rest; kappa over the samples both sides can judge
(`streamgaze.agreement`).

(a) EyeLink EDF (the shared fixture, 1000 Hz screen data): the reference is EyeLink's online parser
    (its FIXATION events in the EDF; stable = inside one, inclusive of both end samples). Left out: NaN gaze and
    samples inside EyeLink BLINK events. Gaze in screen pixels through the project's ``eyelink-edf`` loader
    (x, y times the EDF's screen size); ``deg_per_unit`` = 1 / pixels per degree, derived from the EDF's own
    validation (each validation point's offset in degrees and in pixels: sum of pixel offsets / sum of degree
    offsets), or ``--px-per-deg``.
(b) Synthetic worlds (``make_world`` seeds, 120 Hz head-mounted gaze read through the ``pupil-player``
    loader, ``aspect`` = 480 / 640 as ``run_fixations`` sets it): the reference is the truth's per-sample event,
    stable = ``fixation`` or ``glance`` (both are a held world point; the truth has no pursuit class: the
    head-motion drift of a held point in the image is part of its fixation); ``saccade`` = not stable; blink
    samples (invalid) are left out.
``--sweep`` adds ivt thresholds and idt dispersions on both data sets (defaults unchanged by it).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

from streamgaze.agreement import cohen_kappa, sample_labels  # noqa: E402
from streamgaze.fixations import detect  # noqa: E402
from streamgaze.ingest import LoadContext, get_loader  # noqa: E402

EDF = Path(__file__).resolve().parents[2] / "shared" / "data" / "eyelink" / "test_raw.edf"


def px_per_deg_from_validation(edf: dict) -> float | None:
    """Pixels per degree from the EDF's last validation: sum of |offset| in px / sum of offset in deg."""
    for cal in reversed(edf["info"].get("calibrations") or []):
        v = cal.get("validation")
        if v is None or not len(v):
            continue
        px = np.hypot(v["diff_x"], v["diff_y"])
        deg = np.asarray(v["offset"], np.float64)
        if deg.sum() > 0:
            return float(px.sum() / deg.sum())
    return None


def score(name, t, x, y, valid, ref, judged, *, deg_per_unit=None, **params):
    t0 = time.perf_counter()
    tbl = detect(t, x, y, valid, detector=name, deg_per_unit=deg_per_unit, **params)
    dt = time.perf_counter() - t0
    lab = sample_labels(t, tbl)
    return {"kappa": cohen_kappa(lab, ref, judged), "stable": float(lab[judged].mean()), "events": tbl.num_rows,
            "time": dt, "lab": lab}


def edf_part(path: Path, detectors: list[str], ppd_arg: float | None, sweep: bool) -> None:
    from streamgaze_builtin.loaders import read_edf

    g = get_loader("eyelink-edf")(LoadContext(paths=[path]))["gaze"]
    edf = read_edf(path)
    W, H = (float(v) for v in edf["info"]["screen_coords"])
    t = g["t_s"].to_numpy()
    x = np.asarray(g["x"].to_numpy(zero_copy_only=False), np.float64) * W
    y = np.asarray(g["y"].to_numpy(zero_copy_only=False), np.float64) * H
    valid = g["valid"].to_numpy(zero_copy_only=False)
    fx, bl = edf["discrete"]["fixations"], edf["discrete"]["blinks"]
    ref = sample_labels(t, np.column_stack((fx["stime"], fx["etime"])))
    judged = valid & ~sample_labels(t, np.column_stack((bl["stime"], bl["etime"])))
    derived = px_per_deg_from_validation(edf)
    ppd = ppd_arg or derived
    if ppd is None:
        ppd = 37.0
        src = "ASSUMED 37 px/deg (no validation in the file; a typical EyeLink 1000 at ~60 cm, 1920 px)"
    else:
        src = "given" if ppd_arg else "from the EDF's validation (offset px / offset deg)"
    print(f"## (a) EyeLink EDF: {path.name}, {t.size} samples, {edf['info']['sfreq']:g} Hz, {W:.0f}x{H:.0f} px")
    print(f"pixels per degree: {ppd:.2f} ({src}); deg_per_unit = {1 / ppd:.5f}")
    print(f"reference: EyeLink parser, {len(fx)} fixations, {len(bl)} blinks; judged samples {judged.sum()} "
          f"({judged.mean():.1%}); stable in the reference {ref[judged].mean():.1%}\n")
    print("| detector | kappa | stable share | events | time (s) |\n|---|---|---|---|---|")
    for d in detectors:
        r = score(d, t, x, y, valid, ref, judged, deg_per_unit=1 / ppd)
        print(f"| {d} | {r['kappa']:.3f} | {r['stable']:.1%} | {r['events']} | {r['time']:.2f} |")
    if sweep:
        print("\nsweep (one parameter changed, others at defaults):\n\n| detector | parameter | kappa | stable share |"
              "\n|---|---|---|---|")
        for thr in (20, 30, 40, 50, 75, 100):
            r = score("ivt", t, x, y, valid, ref, judged, deg_per_unit=1 / ppd, threshold_deg_s=float(thr))
            print(f"| ivt | threshold_deg_s={thr} | {r['kappa']:.3f} | {r['stable']:.1%} |")
        for disp in (0.5, 1.0, 1.5, 2.0, 3.0):
            r = score("idt", t, x, y, valid, ref, judged, deg_per_unit=1 / ppd, dispersion_deg=disp)
            print(f"| idt | dispersion_deg={disp} | {r['kappa']:.3f} | {r['stable']:.1%} |")
    print()


def synthetic_part(seeds: list[int], minutes: float, detectors: list[str], sweep: bool) -> None:
    from streamgaze.synthetic import load_truth, make_world

    need_video = "ivt_flow" in detectors
    per = {d: [] for d in detectors}
    pooled = {d: ([], [], []) for d in detectors}  # labels, reference, judged
    sweeps: dict[str, list] = {}
    sweep_params = ([("ivt", "threshold_deg_s", v) for v in (20.0, 30.0, 40.0, 50.0, 75.0, 100.0)]
                    + [("idt", "dispersion_deg", v) for v in (0.5, 1.0, 1.5, 2.0, 3.0)]) if sweep else []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            w = make_world(Path(tmp) / f"w{seed}", seed=seed, minutes=minutes, video=need_video)
            truth = load_truth(w.truth)
            g = get_loader("pupil-player")(LoadContext(paths=[w.root]))["gaze"]
            t = g["t_s"].to_numpy()
            x = np.asarray(g["x"].to_numpy(zero_copy_only=False), np.float64)
            y = np.asarray(g["y"].to_numpy(zero_copy_only=False), np.float64)
            valid = g["valid"].to_numpy(zero_copy_only=False)
            ev = np.asarray(truth["gaze"]["event"])
            if ev.size != t.size:
                raise SystemExit(f"seed {seed}: {t.size} loaded samples vs {ev.size} in the truth")
            ref = (ev == "fixation") | (ev == "glance")
            judged = np.asarray(truth["gaze"]["valid"], bool) & valid
            aspect = truth["video"]["height"] / truth["video"]["width"]
            for d in detectors:
                kw = {"aspect": aspect}
                if d == "ivt_flow":
                    kw["video_path"] = str(w.video)
                r = score(d, t, x, y, valid, ref, judged, **kw)
                per[d].append((seed, r))
                for lst, arr in zip(pooled[d], (r["lab"], ref, judged)):
                    lst.append(arr)
            for d, k, v in sweep_params:
                r = score(d, t, x, y, valid, ref, judged, aspect=aspect, **{k: v})
                sweeps.setdefault(f"{d} {k}={v:g}", []).append((r["lab"], ref, judged))
            n_ref = ref[judged].mean()
            print(f"seed {seed}: {t.size} samples, judged {judged.mean():.1%}, stable in the truth {n_ref:.1%}")
    print(f"\n## (b) synthetic worlds, seeds {seeds}, {minutes:g} min each, 120 Hz\n")
    print("| detector | " + " | ".join(f"seed {s}" for s in seeds) + " | pooled kappa | stable share (pooled) |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for d in detectors:
        lab, ref, judged = (np.concatenate(v) for v in pooled[d])
        cells = " | ".join(f"{r['kappa']:.3f}" for _, r in per[d])
        print(f"| {d} | {cells} | {cohen_kappa(lab, ref, judged):.3f} | {lab[judged].mean():.1%} |")
    if sweeps:
        print("\nsweep, pooled over the seeds:\n\n| setting | kappa | stable share |\n|---|---|---|")
        for name, rows in sweeps.items():
            lab, ref, judged = (np.concatenate(v) for v in zip(*rows))
            print(f"| {name} | {cohen_kappa(lab, ref, judged):.3f} | {lab[judged].mean():.1%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edf", type=Path, default=EDF)
    ap.add_argument("--px-per-deg", type=float, default=None, help="override the EDF's derived pixels per degree")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--detectors", nargs="+", default=None,
                    help="default: ivt idt, plus remodnav when installed (ivt_flow: synthetic only, encodes video)")
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    dets = args.detectors or (["ivt", "idt"] + (["remodnav"] if importlib.util.find_spec("remodnav") else []))
    if args.edf and args.edf.exists():
        edf_part(args.edf, [d for d in dets if d != "ivt_flow"], args.px_per_deg, args.sweep)
    else:
        print(f"(a) skipped: no EDF at {args.edf}\n")
    if args.seeds:
        synthetic_part(args.seeds, args.minutes, dets, args.sweep)


if __name__ == "__main__":
    main()
