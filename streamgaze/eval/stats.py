"""Statistics for scores a reviewer can trust: clustered bootstrap intervals, exact paired tests, Holm's
correction and agreement between raters.

Questions that share a video are not independent (the same scene, the same gaze, often the same objects), so
every interval resamples *videos* and then, within each drawn video, its questions (a two-stage cluster
bootstrap). A unit is what is resampled inside a video: a multiple-choice question, or a whole proactive
question with all its test points. A unit carries a numerator ``x`` (correct answers, or a paired difference)
and a weight ``w`` (1, or its number of test points); an estimate is ``sum(x) / sum(w)`` over a stratum (a task).
All draws come from one seeded ``numpy.random.Generator``, so the same data give the same interval bytes.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 1000  # resamples behind every interval
_CHUNK_DRAWS = 2_000_000  # index draws held in memory at once (the general path)


def percentile_interval(replicates, estimate: float) -> list[float]:
    """The percentile 95 % interval of ``replicates`` (NaN replicates left out), widened to contain
    ``estimate``, rounded to 4 decimals; ``[estimate, estimate]`` when no replicate is finite."""
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if estimate is None or not np.isfinite(estimate):
        return [0.0, 0.0]
    if reps.size == 0:
        return [round(float(estimate), 4)] * 2
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return [round(float(min(lo, estimate)), 4), round(float(max(hi, estimate)), 4)]


def question_bootstrap_ci(correct, resamples: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    """The naive interval that treats every question as independent (kept to show what clustering changes).

    For 0/1 data a resample's count of ones is Binomial(n, p): drawn as such, O(resamples)."""
    correct = np.asarray(correct, dtype=float)
    n = len(correct)
    if n == 0:
        return [0.0, 0.0]
    p = float(np.mean(correct))
    means = np.random.default_rng(seed).binomial(n, p, size=resamples) / n
    return percentile_interval(means, p)


def _codes(labels) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of ``labels`` in sorted order of the distinct labels (deterministic)."""
    uniq, inv = np.unique(np.asarray([str(v) for v in labels], dtype=object).astype(str), return_inverse=True)
    return inv.astype(np.int64), len(uniq)


@dataclass
class Replicates:
    """Per stratum: the estimate on the data (``estimate``, shape (S,)) and the bootstrap replicates
    (``values``, shape (resamples, S); NaN where a replicate drew no unit of the stratum)."""

    estimate: np.ndarray
    values: np.ndarray

    def interval(self, s: int = 0) -> list[float]:
        return percentile_interval(self.values[:, s], float(self.estimate[s]))


def cluster_replicates(x, clusters, strata=None, w=None, *, resamples: int = BOOTSTRAP, seed: int = 0) -> Replicates:
    """Two-stage cluster bootstrap of ``sum(x) / sum(w)`` per stratum.

    ``x``, ``w`` (default 1): one value per unit; ``clusters``: each unit's cluster label (the video);
    ``strata``: each unit's stratum code 0..S-1 (a task; default all 0). One replicate draws as many clusters as
    there are, with replacement, and inside every drawn cluster and stratum as many units as the cell has, with
    replacement; the strata share the cluster draw, so a mean over strata (families, overall) is resampled
    jointly. A cluster drawn c times contributes c independent resamples of each of its cells: a cell whose units
    are all 0/1 with weight 1 draws its count of ones as Binomial(c n, p) (the same distribution as drawing c n
    indices), other cells draw the c n indices. Vectorised; the index draws are chunked to bound memory."""
    x = np.asarray(x, dtype=float)
    n_units = len(x)
    w = np.ones(n_units) if w is None else np.asarray(w, dtype=float)
    strata = np.zeros(n_units, np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    n_strata = int(strata.max()) + 1 if n_units else 1
    num = np.bincount(strata, weights=x, minlength=n_strata)
    den = np.bincount(strata, weights=w, minlength=n_strata)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    values = np.full((resamples, n_strata), np.nan)
    if n_units == 0:
        return Replicates(estimate, values)
    cl, n_clusters = _codes(clusters)
    order = np.lexsort((strata, cl))
    x, w, cl, strata = x[order], w[order], cl[order], strata[order]
    # cells: runs of equal (cluster, stratum) in the sorted units
    new_cell = np.r_[True, (cl[1:] != cl[:-1]) | (strata[1:] != strata[:-1])]
    cell_start = np.flatnonzero(new_cell)
    cell_size = np.diff(np.r_[cell_start, n_units])
    cell_cluster = cl[cell_start]
    cell_stratum = strata[cell_start]
    cell_x = np.add.reduceat(x, cell_start)
    binary = np.logical_and.reduceat((w == 1) & ((x == 0) | (x == 1)), cell_start)
    cell_p = cell_x / cell_size

    stratum_of = np.zeros((len(cell_start), n_strata))
    stratum_of[np.arange(len(cell_start)), cell_stratum] = 1.0  # cells -> strata, summed by a matrix product
    fast, slow = np.flatnonzero(binary), np.flatnonzero(~binary)
    slow_units = int(cell_size[slow].sum())

    rng = np.random.default_rng(seed)
    # stage 1: how many times each cluster is drawn in each resample
    picks = rng.integers(0, n_clusters, size=(resamples, n_clusters))
    times = np.bincount((picks + n_clusters * np.arange(resamples)[:, None]).ravel(),
                        minlength=resamples * n_clusters).reshape(resamples, n_clusters)
    # stage 2, 0/1 cells: a cell drawn c times contributes Binomial(c * n, p) ones out of c * n
    num = np.zeros((resamples, n_strata))
    den = np.zeros((resamples, n_strata))
    if len(fast):
        step = max(1, _CHUNK_DRAWS // len(fast))  # rows at a time (the same draws as all at once)
        for r0 in range(0, resamples, step):
            drawn = times[r0:r0 + step, cell_cluster[fast]] * cell_size[fast]
            num[r0:r0 + step] += rng.binomial(drawn, cell_p[fast]) @ stratum_of[fast]
            den[r0:r0 + step] += drawn @ stratum_of[fast]
    # stage 2, other cells: c * n unit indices drawn uniformly inside the cell
    if len(slow):
        step = max(1, _CHUNK_DRAWS // max(1, slow_units))
        for r0 in range(0, resamples, step):
            k = (times[r0:r0 + step, cell_cluster[slow]] * cell_size[slow]).ravel()  # draws per (row, cell)
            n_rows = len(k) // len(slow)
            cells = np.tile(slow, n_rows)
            bins = np.repeat(np.arange(n_rows), len(slow)) * n_strata + cell_stratum[cells]
            draw_cell = np.repeat(np.arange(len(k)), k)
            size = cell_size[cells][draw_cell]
            units = cell_start[cells][draw_cell] + (rng.random(len(draw_cell)) * size).astype(np.int64)
            b = bins[draw_cell]
            num[r0:r0 + n_rows] += np.bincount(b, weights=x[units], minlength=n_rows * n_strata).reshape(n_rows, n_strata)
            den[r0:r0 + n_rows] += np.bincount(b, weights=w[units], minlength=n_rows * n_strata).reshape(n_rows, n_strata)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return Replicates(estimate, values)


def clustered_ci(x, clusters, w=None, *, resamples: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    """The clustered 95 % interval of ``sum(x) / sum(w)`` (videos, then units within them)."""
    if len(x) == 0:
        return [0.0, 0.0]
    return cluster_replicates(x, clusters, w=w, resamples=resamples, seed=seed).interval(0)


def mean_interval(reps: Replicates, strata: list[int]) -> tuple[float | None, list[float]]:
    """The unweighted mean of the strata ``strata`` (a family, the overall mean of tasks) and its interval from
    the joint replicates (a replicate's mean over the strata it drew)."""
    if not strata:
        return None, [0.0, 0.0]
    est = float(np.mean(reps.estimate[strata]))
    cols = reps.values[:, strata]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate that drew none of the strata: NaN
        rep_means = np.nanmean(cols, axis=1)
    return est, percentile_interval(rep_means, est)


# -- paired tests -------------------------------------------------------------------------------------------------
def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs ``b`` (first right, second wrong) and ``c`` (the
    reverse) under H0 split as Binomial(b + c, 1/2); p = min(1, 2 P(X <= min(b, c))). Exact integer sums."""
    b, c = int(b), int(c)
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)


def sign_flip_exact(d) -> float:
    """Exact two-sided paired permutation test of ``sum(d)``: under H0 the two runs' answers to a unit are
    exchangeable, so each unit's integer difference ``d`` keeps or flips its sign with probability 1/2. The
    null distribution of the sum is the convolution of those two-point laws, computed exactly (as integer counts
    over 2^m outcomes); p = P(|S| >= |observed|). With every |d| = 1 it is McNemar's exact test."""
    d = np.asarray(d, dtype=np.int64)
    d = d[d != 0]
    if len(d) == 0:
        return 1.0
    observed = abs(int(d.sum()))
    mags, counts = np.unique(np.abs(d), return_counts=True)
    dist = np.ones(1)  # P(sum = s) on the grid s = -total .. total
    for a, k in zip(mags.tolist(), counts.tolist()):
        j = np.arange(k + 1)  # how many of the k units keep a positive sign: Binomial(k, 1/2)
        logs = np.array([math.lgamma(k + 1) - math.lgamma(i + 1) - math.lgamma(k - i + 1) for i in j]) - k * math.log(2)
        law = np.zeros(2 * a * k + 1)
        law[2 * a * j] = np.exp(logs)  # sum a * (2j - k), shifted by a * k
        dist = np.convolve(dist, law)
    total = (len(dist) - 1) // 2
    sums = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(sums) >= observed].sum()))


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` (NaN left as NaN): sorted ascending, p_(i) x (m - i + 1),
    made non-decreasing, capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adj
    return out.tolist()


# -- agreement between raters -------------------------------------------------------------------------------------
def fleiss_kappa(counts) -> float:
    """Fleiss' kappa of an (items x categories) table of how many raters put each item in each category.

    Items may have different numbers of raters (at least 2 each; others are left out): P_i = sum_j
    n_ij (n_ij - 1) / (n_i (n_i - 1)), P = mean P_i, p_j = the share of all ratings in category j,
    P_e = sum_j p_j^2, kappa = (P - P_e) / (1 - P_e). NaN with no item or when P_e = 1 (every rating in one
    category: agreement is perfect but nothing is beyond chance)."""
    t = np.asarray(counts, dtype=float)
    if t.ndim != 2:
        raise ValueError("counts must be a 2-d table (items x categories)")
    n_i = t.sum(axis=1)
    t = t[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if len(t) == 0:
        return float("nan")
    p_i = ((t * (t - 1)).sum(axis=1)) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = t.sum(axis=0) / t.sum()
    p_e = float((p_j ** 2).sum())
    if p_e >= 1.0:
        return float("nan")
    return (p_bar - p_e) / (1.0 - p_e)


# -- units: what score, compare and the human baseline resample --------------------------------------------------
@dataclass
class Units:
    """The resampled units of one task: per unit its numerator ``x``, weight ``w`` and cluster (video)."""

    x: np.ndarray
    w: np.ndarray
    clusters: list

    @classmethod
    def from_outcomes(cls, outcomes) -> "Units":
        """From ``(question_id, video_id, value)`` triples, one per answer (a multiple-choice question, or one
        test point of a proactive question): the answers of one question form one unit (x = the sum of the
        values, w = how many), clustered by its video. Units are in first-seen order."""
        index: dict = {}
        xs: list[float] = []
        ws: list[float] = []
        clusters: list = []
        for qid, video, value in outcomes:
            k = index.get(qid)
            if k is None:
                k = index[qid] = len(xs)
                xs.append(0.0)
                ws.append(0.0)
                clusters.append(video)
            xs[k] += float(value)
            ws[k] += 1.0
        return cls(np.array(xs, dtype=float), np.array(ws, dtype=float), clusters)

    def __len__(self) -> int:
        return len(self.x)

    def interval(self, seed: int = 0) -> list[float]:
        return clustered_ci(self.x, self.clusters, w=self.w, seed=seed)


def joint_replicates(units: dict[str, Units], seed: int = 0) -> tuple[list[str], Replicates]:
    """One cluster draw shared by every task of ``units`` (tasks are strata): ``(task order, replicates)``."""
    names = [t for t in units if len(units[t])]
    if not names:
        return [], Replicates(np.zeros(0), np.zeros((BOOTSTRAP, 0)))
    x = np.concatenate([units[t].x for t in names])
    w = np.concatenate([units[t].w for t in names])
    clusters = [c for t in names for c in units[t].clusters]
    strata = np.repeat(np.arange(len(names)), [len(units[t]) for t in names])
    return names, cluster_replicates(x, clusters, strata, w, seed=seed)


def stratified_intervals(units: list[Units], seed: int = 0) -> list[list[float]]:
    """Intervals of several estimates on the same videos (a model and the blind baselines on one task) from one
    cluster draw: one call instead of one per estimate. ``[0.0, 0.0]`` for an estimate without units."""
    names, reps = joint_replicates({str(i): u for i, u in enumerate(units)}, seed)
    col = {int(n): i for i, n in enumerate(names)}
    return [reps.interval(col[i]) if i in col else [0.0, 0.0] for i in range(len(units))]


def macro_intervals(units: dict[str, Units], groups: dict[str, list[str]], seed: int = 0,
                    shown: dict[str, float] | None = None) -> dict[str, list[float]]:
    """The clustered interval of the unweighted mean of task estimates for each group of tasks (a family, a
    suite's overall), all from one joint cluster draw; a group without units gets ``[0.0, 0.0]``. ``shown``:
    the (rounded) values printed for the groups, which the intervals are widened to contain."""
    names, reps = joint_replicates(units, seed)
    col = {t: i for i, t in enumerate(names)}
    out = {}
    for g, tasks in groups.items():
        est, ci = mean_interval(reps, [col[t] for t in tasks if t in col])
        if est is not None and shown and g in shown and shown[g] is not None:
            ci = [min(ci[0], shown[g]), max(ci[1], shown[g])]
        out[g] = ci
    return out
