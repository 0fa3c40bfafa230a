"""Sample-level agreement (Cohen's kappa) of our detectors with a reference (a script, not a test).

    python bench/bench_agreement.py [--edf PATH] [--px-per-deg P] [--seeds 0 1 2 3]
        [--minutes 3] [--detectors ivt idt remodnav] [--sweep]
    python bench/bench_agreement.py --hooge DIR [--detectors ...] [--sweep]    (part (c) only)
    python bench/bench_agreement.py --lund DIR [--detectors ...] [--sweep]     (part (d) only)

"Stable gaze" = inside an event of the detector (``streamgaze.gaze.fixations.detect`` at the detector's defaults;
REMoDNaV's FIXA and PURS) against the rest; kappa over the samples both sides can judge
(`streamgaze.gaze.agreement`).

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
(c) Human coders (``--hooge DIR``): the data of Hooge, Niehorster, Nystrom, Andersson & Hessels (2018), "Is human
    classification by experienced untrained observers a gold standard in fixation detection?" (Behav Res Methods;
    github.com/dcnieho/humanFixationClassification, data CC BY-NC-SA 4.0, never in this repo). ``DIR/ETdata/*.txt``:
    one trial per file (adult_* / infant_*), tab-separated with a header, ``time`` (ms from 0, 300 Hz), ``x, y``
    (screen pixels), any further column ignored; lost gaze is NaN. ``DIR/coderSettings/<coder>.txt``: one row per
    fixation a coder marked, ``Trial`` (the gaze file's name), ``FixStart, FixEnd`` (ms, the first and last
    sample's time rounded to 0.01 ms; widened by half a sample so each lands on its sample). Every coder is a
    reference: stable = inside a coded fixation; a trial without rows for a coder counts as "no fixation". Judged:
    samples with finite x and y, pooled over the trials. ``deg_per_unit`` from the README's geometry (1920 x 1080
    px on 50.9 x 28.6 cm, ~65 cm away): one pixel at the screen centre. The human baseline is coder vs coder.
(d) Human coders (``--lund DIR``): the Lund 2013 set of Andersson, Larsson, Holmqvist, Stridh & Nystrom (2017),
    "One algorithm to rule them all?" (Behav Res Methods; github.com/richardandersson/EyeMovementDetectorEvaluation,
    GPL-3.0, never in this repo): every ``*.mat`` below DIR is one trial coded by one coder, ``<trial>_<coder>.mat``
    (e.g. ``..._labelled_MN.mat``), a MATLAB struct ``ETdata`` with ``pos`` (one row per sample: column 3 x, 4 y in
    screen pixels, (0, 0) = lost; column 5 the coder's label: 1 fixation, 2 saccade, 3 PSO, 4 smooth pursuit,
    5 blink, 6 undefined), ``sampFreq`` (500 Hz), ``screenDim`` (m), ``screenRes`` (px) and ``viewDist`` (m).
    The category (images / moving dots / video) comes from the folder (``images``, ``dots``, ``videos``) or else
    from the file name (``img``, ``trial``, ``video``). Stable = fixation or pursuit; judged: gaze present and
    a label 1-5 (undefined left out). ``deg_per_unit``: one pixel at the screen centre from the file's geometry.
    Kappa per category, pooled over its trials: each detector vs each coder (mean), and coder vs coder on the
    trials both coded. The issue's targets: 0.80 images, 0.78 dots, 0.80 video (two coders: 0.90 / 0.81 / 0.88).
``--sweep`` adds ivt thresholds and idt dispersions on every data set (defaults unchanged by it), and for (c) REMoDNaV
without its PURS events (``pursuit`` = false).
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

from streamgaze.gaze.agreement import cohen_kappa, sample_labels  # noqa: E402
from streamgaze.gaze.fixations import detect  # noqa: E402
from streamgaze.gaze.ingest import LoadContext, get_loader  # noqa: E402

EDF = Path(__file__).resolve().parents[2] / "shared" / "data" / "eyelink" / "test_raw.edf"


def score(name, t, x, y, valid, ref, judged, *, deg_per_unit=None, **params):
    t0 = time.perf_counter()
    tbl = detect(t, x, y, valid, detector=name, deg_per_unit=deg_per_unit, **params)
    dt = time.perf_counter() - t0
    lab = sample_labels(t, tbl)
    return {"kappa": cohen_kappa(lab, ref, judged), "stable": float(lab[judged].mean()), "events": tbl.num_rows,
            "time": dt, "lab": lab}


def edf_part(path: Path, detectors: list[str], ppd_arg: float | None, sweep: bool) -> None:
    from streamgaze_builtin.loaders.eyelink import edf_px_per_deg, read_edf

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
    derived = edf_px_per_deg(edf)
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
    from streamgaze.demo.synthetic import load_truth, make_world

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


#: (c) Screen geometry from the README of Hooge et al.'s data: 1920 x 1080 px, 50.9 x 28.6 cm, viewed from ~65 cm.
HOOGE_SCREEN_PX = (1920, 1080)
HOOGE_SCREEN_CM = (50.9, 28.6)
HOOGE_DISTANCE_CM = 65.0


def hooge_deg_per_px() -> float:
    """Degrees one pixel subtends at the screen centre (50.9 cm / 1920 px seen from 65 cm): the constant scale
    a detector's deg_per_unit is (the edges are ~10 % smaller; pixels are square to 0.1 %)."""
    return math.degrees(math.atan(HOOGE_SCREEN_CM[0] / HOOGE_SCREEN_PX[0] / HOOGE_DISTANCE_CM))


def _tsv(path: Path, cols: dict) -> pa.Table:
    return pv.read_csv(path, parse_options=pv.ParseOptions(delimiter="\t"),
                       convert_options=pv.ConvertOptions(include_columns=list(cols), column_types=cols))


def read_hooge(root: Path) -> tuple[dict, dict]:
    """``{trial: (t_s, x, y)}`` from ``ETdata/*.txt`` and ``{coder: {trial: (n, 2) [start, end] s}}`` from
    ``coderSettings/*.txt``; only trials with a gaze file are kept (coders also coded trials not in DIR)."""
    files = {}
    for f in sorted((root / "ETdata").glob("*.txt")):
        g = _tsv(f, {"time": pa.float64(), "x": pa.float64(), "y": pa.float64()})
        t, x, y = (np.asarray(g[c].to_numpy(zero_copy_only=False), np.float64) for c in ("time", "x", "y"))
        files[f.stem] = (t / 1000.0, x, y)
    codings = {}
    for f in sorted((root / "coderSettings").glob("*.txt")):
        c = _tsv(f, {"Trial": pa.string(), "FixStart": pa.float64(), "FixEnd": pa.float64()})
        trial = np.asarray(c["Trial"].to_numpy(zero_copy_only=False), dtype=object)
        ev = np.column_stack([c[k].to_numpy() for k in ("FixStart", "FixEnd")]) / 1000.0
        codings[f.stem] = {name: ev[trial == name] for name in files if (trial == name).any()}
    if not files or not codings:
        raise SystemExit(f"--hooge {root}: need ETdata/*.txt and coderSettings/*.txt (found {len(files)} gaze "
                         f"files, {len(codings)} coders)")
    return files, codings


def hooge_part(root: Path, detectors: list[str], sweep: bool) -> None:
    """Kappa of each detector with each human coder and of the coders with one another, pooled over the trials."""
    files, codings = read_hooge(root)
    dpp = hooge_deg_per_px()
    coders = sorted(codings)
    judged, group = [], []
    ref = {c: [] for c in coders}
    missing = []
    for name, (t, x, y) in files.items():
        judged.append(np.isfinite(x) & np.isfinite(y))
        group.append(np.full(t.size, name.split("_")[0]))
        half = 0.5 * float(np.median(np.diff(t)))  # coded times are sample times rounded to 0.01 ms
        for c in coders:
            ev = codings[c].get(name)
            if ev is None:
                missing.append(f"{c}/{name}")
                ev = np.zeros((0, 2))
            ref[c].append(sample_labels(t, ev + [-half, half]))
    judged, group = np.concatenate(judged), np.concatenate(group)
    ref = {c: np.concatenate(v) for c, v in ref.items()}

    def labels(name, **params):
        t0 = time.perf_counter()
        lab = [sample_labels(t, detect(t, x, y, np.isfinite(x) & np.isfinite(y), detector=name,
                                       deg_per_unit=dpp, **params)) for t, x, y in files.values()]
        return np.concatenate(lab), time.perf_counter() - t0

    def vs_coders(lab, mask):
        return [cohen_kappa(lab, ref[c], mask) for c in coders]

    pairs = list(itertools.combinations(coders, 2))
    groups = sorted(set(group))
    n_by = {g: sum(1 for k in files if k.split("_")[0] == g) for g in groups}
    print(f"## (c) Human coders: Hooge et al. (2018), {root}")
    print(f"{len(files)} trials ({', '.join(f'{n_by[g]} {g}' for g in groups)}), {judged.size} samples at 300 Hz, "
          f"judged (finite gaze) {judged.sum()} ({judged.mean():.1%}); {len(coders)} coders; deg_per_unit = "
          f"{dpp:.5f} deg/px ({1 / dpp:.1f} px/deg: one pixel of 50.9 cm / 1920 at 65 cm, the README's geometry)")
    if missing:
        print(f"trials without rows for a coder, counted as no fixation: {', '.join(missing)}")
    print(f"stable (inside a coded fixation) per coder: "
          f"{', '.join(f'{c} {ref[c][judged].mean():.1%}' for c in coders)}\n")
    print("kappa, pooled over the trials (the coders' row: each coder vs the other coders, mean):\n")
    print("| labelling | " + " | ".join(coders) + " | mean | stable share | time (s) |")
    print("|---|" + "---|" * (len(coders) + 3))
    rows = {}
    for d in detectors:
        lab, dt = labels(d)
        rows[d] = lab
        k = vs_coders(lab, judged)
        print(f"| {d} | " + " | ".join(f"{v:.3f}" for v in k) + f" | **{np.mean(k):.3f}** | "
              f"{lab[judged].mean():.1%} | {dt:.2f} |")
    kc = {p: cohen_kappa(ref[p[0]], ref[p[1]], judged) for p in pairs}
    other = [np.mean([v for p, v in kc.items() if c in p]) for c in coders]
    print("| coders | " + " | ".join(f"{v:.3f}" for v in other) + f" | **{np.mean(other):.3f}** | "
          f"{np.mean([ref[c][judged].mean() for c in coders]):.1%} | |")
    kv = np.array(list(kc.values()))
    lo, hi = min(kc, key=kc.get), max(kc, key=kc.get)
    print(f"\ncoder vs coder ({len(pairs)} pairs): mean {kv.mean():.3f}, median {np.median(kv):.3f}, range "
          f"{kv.min():.3f} ({'-'.join(lo)}) to {kv.max():.3f} ({'-'.join(hi)})")
    print("\nby group (detectors: mean over the coders; coders: mean and range over the pairs):\n")
    print("| group | samples judged | " + " | ".join(detectors) + " | coder pairs |\n|---|---|" + "---|" * (len(detectors) + 1))
    for g in groups:
        m = judged & (group == g)
        cells = " | ".join(f"{np.mean(vs_coders(rows[d], m)):.3f}" for d in detectors)
        kg = np.array([cohen_kappa(ref[a], ref[b], m) for a, b in pairs])
        print(f"| {g} | {m.sum()} | {cells} | {kg.mean():.3f} ({kg.min():.3f}-{kg.max():.3f}) |")
    if sweep:
        print("\nsweep (one parameter changed, others at defaults; kappa = mean over the coders, pooled):\n\n"
              "| detector | parameter | kappa | stable share |\n|---|---|---|---|")
        grid = ([("ivt", "threshold_deg_s", v) for v in (20.0, 30.0, 40.0, 50.0, 75.0, 100.0)]
                + [("ivt", "velocity_window_ms", v) for v in (0.0, 20.0, 40.0)]
                + [("idt", "dispersion_deg", v) for v in (0.5, 1.0, 1.5, 2.0, 3.0)])
        if "remodnav" in detectors:
            grid.append(("remodnav", "pursuit", False))
        for d, k, v in grid:
            lab, _ = labels(d, **{k: v})
            vs = str(v).lower() if isinstance(v, bool) else f"{v:g}"
            print(f"| {d} | {k}={vs} | {np.mean(vs_coders(lab, judged)):.3f} | {lab[judged].mean():.1%} |")
    print()


#: (d) Lund 2013 labels: 1 fixation, 2 saccade, 3 PSO, 4 smooth pursuit, 5 blink, 6 undefined.
LUND_STABLE = (1, 4)
LUND_JUDGED = (1, 2, 3, 4, 5)
LUND_CATEGORIES = {"img": "images", "image": "images", "dot": "dots", "trial": "dots", "vid": "video"}


def read_lund_mat(path: Path) -> dict:
    """One coded trial: ``t`` (s, from the sample rate), ``x, y`` (px, NaN where lost), ``label``, ``deg_per_px``
    (one pixel at the screen centre), ``category``, ``trial`` and ``coder`` (from the file name)."""
    from scipy.io import loadmat

    et = loadmat(str(path), squeeze_me=True, struct_as_record=False)["ETdata"]
    pos = np.atleast_2d(np.asarray(et.pos, np.float64))
    x, y, label = pos[:, 3].copy(), pos[:, 4].copy(), pos[:, 5].astype(np.int64)
    lost = (x == 0) & (y == 0)
    x[lost] = y[lost] = np.nan
    width_m = float(np.atleast_1d(et.screenDim)[0])
    width_px = float(np.atleast_1d(et.screenRes)[0])
    deg_per_px = math.degrees(math.atan(width_m / width_px / float(et.viewDist)))
    category = next((c for name in (path.parent.name, path.stem) for key, c in LUND_CATEGORIES.items()
                     if key in name.lower()), "other")
    trial, _, coder = path.stem.rpartition("_")
    return {"t": np.arange(x.size) / float(et.sampFreq), "x": x, "y": y, "label": label, "deg_per_px": deg_per_px,
            "category": category, "trial": trial, "coder": coder}


def lund_kappas(trials: list[dict], detectors: list[str], **params) -> dict:
    """``{category: {"n_trials", "judged", detector: mean kappa over the coders, "coders": kappa or NaN}}``, each
    pooled over the category's trials (a trial coded twice counts once per coder)."""
    out = {}
    for cat in sorted({tr["category"] for tr in trials}):
        rows = [tr for tr in trials if tr["category"] == cat]
        coders = sorted({tr["coder"] for tr in rows})
        res = {"n_trials": len({tr["trial"] for tr in rows})}
        ref = {c: [np.isin(tr["label"], LUND_STABLE) for tr in rows if tr["coder"] == c] for c in coders}
        judged = {c: [np.isfinite(tr["x"]) & np.isfinite(tr["y"]) & np.isin(tr["label"], LUND_JUDGED)
                      for tr in rows if tr["coder"] == c] for c in coders}
        res["judged"] = int(sum(m.sum() for c in coders for m in judged[c]))
        for d in detectors:
            lab = {c: [sample_labels(tr["t"], detect(tr["t"], tr["x"], tr["y"], np.isfinite(tr["x"]), detector=d,
                                                     deg_per_unit=tr["deg_per_px"], **params))
                       for tr in rows if tr["coder"] == c] for c in coders}
            res[d] = float(np.mean([cohen_kappa(np.concatenate(lab[c]), np.concatenate(ref[c]),
                                                np.concatenate(judged[c])) for c in coders]))
        by = {(tr["trial"], tr["coder"]): tr for tr in rows}
        pairs = [(by[a, c1], by[a, c2]) for (a, c1) in by for c2 in coders if c2 > c1 and (a, c2) in by]
        if pairs:
            a = np.concatenate([np.isin(p["label"], LUND_STABLE) for p, _ in pairs])
            b = np.concatenate([np.isin(q["label"], LUND_STABLE) for _, q in pairs])
            m = np.concatenate([np.isfinite(p["x"]) & np.isin(p["label"], LUND_JUDGED)
                                & np.isin(q["label"], LUND_JUDGED) for p, q in pairs])
            res["coders"] = cohen_kappa(a, b, m)
        else:
            res["coders"] = float("nan")
        out[cat] = res
    return out


def lund_part(root: Path, detectors: list[str], sweep: bool) -> None:
    """Kappa per category of each detector with the Lund 2013 coders, beside the issue's targets."""
    files = sorted(root.rglob("*.mat"))
    if not files:
        raise SystemExit(f"--lund {root}: no .mat files below it")
    trials = [read_lund_mat(f) for f in files]
    target = {"images": 0.80, "dots": 0.78, "video": 0.80}
    print(f"## (d) Human coders: Lund 2013 (Andersson et al. 2017), {root}: {len(files)} coded files\n")
    print("| category | trials | judged samples | " + " | ".join(detectors) + " | coder vs coder | target |\n|"
          + "---|" * (len(detectors) + 5))
    for cat, r in lund_kappas(trials, detectors).items():
        print(f"| {cat} | {r['n_trials']} | {r['judged']} | " + " | ".join(f"{r[d]:.3f}" for d in detectors)
              + f" | {r['coders']:.3f} | {target.get(cat, float('nan')):.2f} |")
    if sweep:
        print("\nsweep (ivt threshold_deg_s; kappa per category):\n")
        for thr in (20.0, 30.0, 40.0, 50.0, 75.0, 100.0):
            k = lund_kappas(trials, ["ivt"], threshold_deg_s=thr)
            print(f"- {thr:g} deg/s: " + ", ".join(f"{c} {r['ivt']:.3f}" for c, r in k.items()))
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edf", type=Path, default=EDF)
    ap.add_argument("--px-per-deg", type=float, default=None, help="override the EDF's derived pixels per degree")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--detectors", nargs="+", default=None,
                    help="default: ivt idt, plus remodnav when installed (ivt_flow: synthetic only, encodes video)")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--hooge", type=Path, default=None, metavar="DIR",
                    help="score against the human coders of Hooge et al. (2018) in DIR (ETdata/, coderSettings/); "
                         "runs only that part")
    ap.add_argument("--lund", type=Path, default=None, metavar="DIR",
                    help="score against the Lund 2013 coders (Andersson et al. 2017): the .mat files below DIR; "
                         "runs only that part (needs scipy)")
    args = ap.parse_args()
    dets = args.detectors or (["ivt", "idt"] + (["remodnav"] if importlib.util.find_spec("remodnav") else []))
    if args.hooge is not None:
        hooge_part(args.hooge, [d for d in dets if d != "ivt_flow"], args.sweep)
        return
    if args.lund is not None:
        lund_part(args.lund, [d for d in dets if d != "ivt_flow"], args.sweep)
        return
    if args.edf and args.edf.exists():
        edf_part(args.edf, [d for d in dets if d != "ivt_flow"], args.px_per_deg, args.sweep)
    else:
        print(f"(a) skipped: no EDF at {args.edf}\n")
    if args.seeds:
        synthetic_part(args.seeds, args.minutes, dets, args.sweep)


if __name__ == "__main__":
    main()
