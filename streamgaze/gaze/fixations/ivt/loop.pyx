# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The I-VT detector's default path as one compiled loop (Cython, built at install; numpy path without it).

Why: in numpy, I-VT takes about twenty passes over the samples (usability, the speed test, time gaps, the
one-sided fixes next to missing samples, runs, the duration filter, the centroids); a loop that decides each
sample, extends or closes the current run and sums a closed run's coordinates reads every sample once and is
several times faster. It is the same rule with the same floating-point operations in the same order as
`streamgaze.fixations.ivt_pass`, ``IVT._events`` and `streamgaze.fixations.events_table` (centroid sums in
numpy's pairwise order; built with FP contraction off), so its table equals the numpy path's bit for bit
(tests/test_detectors_equivalence.py): the loop changes the speed only.
"""
import numpy as np

from libc.math cimport INFINITY, fabs, isfinite


def ivt_events(const double[::1] t, const double[::1] x, const double[::1] y, valid, *, double threshold,
               double aspect, double max_gap_s, Py_ssize_t min_samples, double min_duration_s, bint want_range,
               Py_ssize_t half_span=1, run_parts=None, Py_ssize_t pso_samples=0):
    """``(start, end, t_start, t_end, x, y, n_samples, big, down)`` of the I-VT fixations (numpy arrays; big =
    max |x|, |y| over the usable samples when ``want_range``, else 0; down = the first sample whose time is below
    an earlier one, NaN times skipped, or -1: `streamgaze.fixations.first_decrease`, read on the way).
    ``valid``: bool array or None. The speed at sample i is taken over the span [i - half_span, i + half_span],
    cut short before the nearest samples that are not usable (`streamgaze.fixations.span_slow_mask` states the
    rule). ``pso_samples`` > 0: a run whose previous sample is usable and at most ``max_gap_s`` before it (a
    fast stretch just ended: the post-saccadic oscillation) starts that many samples later; the minimum count
    and duration apply to what is left (`streamgaze_builtin.detectors.ivt.trim_pso` on the numpy path).

    ``run_parts(fn, n)`` -> ``[fn(lo, hi) for the parts of range(n)]`` may run the parts in threads (the loop
    releases the GIL); default one part. A part starts and ends at the first sample at or after its cut where
    no run can go on (not slow, or after a time gap), so every run lies in exactly one part and the result
    does not depend on the split.
    """
    cdef Py_ssize_t n = t.shape[0]
    cdef _Scan sc
    sc.t, sc.x, sc.y, sc.n = &t[0] if n else NULL, &x[0] if n else NULL, &y[0] if n else NULL, n
    cdef const unsigned char[::1] v
    sc.has_valid = valid is not None
    if sc.has_valid:
        v = np.ascontiguousarray(valid, dtype=np.bool_).view(np.uint8)
        sc.v = &v[0] if n else NULL
    sc.thr2, sc.a2, sc.max_gap = threshold * threshold, aspect * aspect, max_gap_s
    sc.min_samples, sc.min_dur, sc.want_range = min_samples, min_duration_s - 1e-9, want_range
    sc.half = max(half_span, 1)
    sc.pso = max(pso_samples, 0)

    def part(Py_ssize_t lo, Py_ssize_t hi):
        return _scan_part(&sc, lo, hi)

    pieces = run_parts(part, n) if run_parts is not None and n else [part(0, n)]
    columns = pieces[0][0] if len(pieces) == 1 else [np.concatenate([p[0][c] for p in pieces]) for c in range(6)]
    t_arr = np.asarray(t)
    down, latest = -1, -np.inf  # a part's first time below the parts before it is its first non-NaN one
    for p in pieces:
        if p[3] >= 0 and t_arr[p[3]] < latest:
            down = p[3]
            break
        if p[2] >= 0:
            down = p[2]
            break
        latest = max(latest, p[4])
    start, end = columns[0], columns[1]
    return (*columns, end - start, max([p[1] for p in pieces], default=0.0), down)


cdef struct _Events:
    long long* s
    long long* e
    double* t0
    double* t1
    double* x
    double* y


cdef struct _Scan:
    const double* t
    const double* x
    const double* y
    const unsigned char* v
    Py_ssize_t n
    bint has_valid
    double thr2, a2, max_gap, min_dur
    Py_ssize_t min_samples, half, pso
    bint want_range


cdef tuple _scan_part(_Scan* sc, Py_ssize_t lo, Py_ssize_t hi):
    """The events of the part [boundary(lo), boundary(hi)) (start, end, t_start, t_end, x, y: views of arrays
    that may be longer than needed, not copied), its big and times (first decrease or -1, first non-NaN time's
    sample or -1, latest time)."""
    cdef Py_ssize_t begin = 0, end = sc.n, k, down = -1, first = -1
    cdef double big = 0.0, latest = -INFINITY
    with nogil:
        if lo > 0:
            begin = _boundary(sc, lo)
        if hi < sc.n:
            end = _boundary(sc, hi)
    cdef Py_ssize_t cap = (end - begin) // (sc.min_samples if sc.min_samples > 1 else 1) + 1
    arrays = [np.empty(cap, np.int64), np.empty(cap, np.int64)] + [np.empty(cap) for _ in range(4)]
    cdef long long[::1] s = arrays[0]
    cdef long long[::1] e = arrays[1]
    cdef double[::1] t0 = arrays[2]
    cdef double[::1] t1 = arrays[3]
    cdef double[::1] mx = arrays[4]
    cdef double[::1] my = arrays[5]
    cdef _Events out
    out.s, out.e, out.t0, out.t1, out.x, out.y = &s[0], &e[0], &t0[0], &t1[0], &mx[0], &my[0]
    cdef long long[::1] queue = np.empty(_ring(sc.half), np.int64)
    with nogil:
        k = _scan(sc, begin, end, &out, &big, &queue[0], &down, &first, &latest) if end > begin else 0
    return [a[:k] for a in arrays], big, down, first, latest


cdef inline bint _usable(const double* t, const double* x, const double* y, const unsigned char* v,
                         bint has_valid, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """Finite t, x, y and valid; False outside the samples."""
    if i < 0 or i >= n:
        return False
    return isfinite(t[i]) and isfinite(x[i]) and isfinite(y[i]) and (not has_valid or v[i])


cdef inline bint _span_slow(const double* t, const double* x, const double* y, Py_ssize_t i, Py_ssize_t j1,
                            Py_ssize_t j2, Py_ssize_t half, double thr2, double a2) noexcept nogil:
    """The speed test over the span [j1, j2] around sample i, squared: dx^2 + a^2 dy^2 < (thr dt)^2, in
    `ivt_pass`'s order of operations; a span cut short (one-sided) also needs a later time; none below 2 samples."""
    cdef double dx, dy, dt, d2
    if j2 <= j1:
        return False
    dx = x[j2] - x[j1]
    dy = y[j2] - y[j1]
    dt = t[j2] - t[j1]
    d2 = dy * dy
    if a2 != 1.0:
        d2 = d2 * a2
    if j1 == i - half and j2 == i + half:
        return dx * dx + d2 < dt * dt * thr2
    return dt > 0 and dx * dx + d2 < thr2 * (dt * dt)


cdef inline Py_ssize_t _ring(Py_ssize_t half) noexcept nogil:
    """Entries of `_scan`'s queue: a power of two holding the half + 1 samples [i, i + half]."""
    cdef Py_ssize_t r = 2
    while r < half + 2:
        r *= 2
    return r


cdef bint _slow_at(_Scan* sc, Py_ssize_t i) noexcept nogil:
    """The test at one sample, its span found by walking out to the nearest not-usable samples (`_boundary`)."""
    cdef Py_ssize_t j1 = i, j2 = i, n = sc.n
    if not _usable(sc.t, sc.x, sc.y, sc.v, sc.has_valid, n, i):
        return False
    while j1 > i - sc.half and _usable(sc.t, sc.x, sc.y, sc.v, sc.has_valid, n, j1 - 1):
        j1 -= 1
    while j2 < i + sc.half and _usable(sc.t, sc.x, sc.y, sc.v, sc.has_valid, n, j2 + 1):
        j2 += 1
    return _span_slow(sc.t, sc.x, sc.y, i, j1, j2, sc.half, sc.thr2, sc.a2)


cdef Py_ssize_t _boundary(_Scan* sc, Py_ssize_t c) noexcept nogil:
    """The first sample i >= c (or n) where no run goes on from i - 1: i is not slow, or follows a time gap."""
    cdef Py_ssize_t i = c
    while i < sc.n:
        if not _slow_at(sc, i) or sc.t[i] - sc.t[i - 1] > sc.max_gap:
            return i
        i += 1
    return sc.n


cdef Py_ssize_t _scan(_Scan* sc, Py_ssize_t begin, Py_ssize_t end, _Events* out, double* big, long long* queue,
                      Py_ssize_t* down, Py_ssize_t* first, double* latest) noexcept nogil:
    """One pass over [begin, end): each sample's test, the current run extended, split at a time gap or
    closed; a closed run long enough is kept and summed. Returns the number of events. Usability is looked up
    once per sample, ``half`` samples ahead; the not-usable samples in [i, i + half] wait in ``queue`` (a ring
    of `_ring` entries, indexed with a bit mask), so each sample's span ends are known without walking, and a
    span with no missing sample (the usual case) goes straight to the central test. On the way: the first time
    below an earlier one (``down``), the first non-NaN time (``first``) and the largest (``latest``)."""
    cdef const double* t = sc.t
    cdef const double* x = sc.x
    cdef const double* y = sc.y
    cdef const unsigned char* v = sc.v
    cdef bint has_valid = sc.has_valid, want_range = sc.want_range, bad_here, slow
    cdef double thr2 = sc.thr2, a2 = sc.a2, max_gap = sc.max_gap, min_dur = sc.min_dur, m = 0.0
    cdef Py_ssize_t n = sc.n, min_samples = sc.min_samples, half = sc.half, mask = _ring(sc.half) - 1
    cdef Py_ssize_t i, j, k = 0, start = -1, head = 0, tail = 0, prev_bad, next_bad, j1, j2
    cdef Py_ssize_t pso = sc.pso, skip = 0
    cdef double dx, dy, dt, d2, ti, tmax = -INFINITY
    cdef Py_ssize_t first_down = -1, first_time = -1
    prev_bad = begin - half - 1  # the last not-usable sample before begin, or one no span reaches
    for j in range(max(begin - half, 0), begin):
        if not _usable(t, x, y, v, has_valid, n, j):
            prev_bad = j
    for j in range(begin, min(begin + half, n)):  # the queue holds [i, i + half) before sample i's turn
        if not _usable(t, x, y, v, has_valid, n, j):
            queue[tail & mask] = j
            tail += 1
    for i in range(begin, end):
        ti = t[i]
        if ti < tmax:
            if first_down < 0:
                first_down = i
        elif ti > tmax:
            if first_time < 0:
                first_time = i
            tmax = ti
        j = i + half
        if j < n and not _usable(t, x, y, v, has_valid, n, j):
            queue[tail & mask] = j
            tail += 1
        bad_here = head < tail and queue[head & mask] == i
        if bad_here:
            slow = False
        else:
            if head == tail and prev_bad < i - half and i >= half and j < n:  # the whole span: the usual case
                dx = x[j] - x[i - half]
                dy = y[j] - y[i - half]
                dt = t[j] - t[i - half]
                d2 = dy * dy
                if a2 != 1.0:
                    d2 = d2 * a2
                slow = dx * dx + d2 < dt * dt * thr2
            else:
                next_bad = queue[head & mask] if head < tail else n
                j1 = max(i - half, prev_bad + 1, 0)
                j2 = min(j, next_bad - 1, n - 1)
                slow = _span_slow(t, x, y, i, j1, j2, half, thr2, a2)
            if want_range:
                m = max(m, fabs(x[i]), fabs(y[i]))
        if start >= 0 and (not slow or t[i] - t[i - 1] > max_gap):  # the open run ends before i
            if start + skip < i:
                k = _close(t, x, y, start + skip, i, min_samples, min_dur, out, k)
            start = -1
        if slow and start < 0:
            start = i
            skip = 0
            if pso > 0 and i > 0 and t[i] - t[i - 1] <= max_gap and _usable(t, x, y, v, has_valid, n, i - 1):
                skip = pso
        if bad_here:
            head += 1
            prev_bad = i
    if start >= 0 and start + skip < end:
        k = _close(t, x, y, start + skip, end, min_samples, min_dur, out, k)
    big[0] = m
    down[0], first[0], latest[0] = first_down, first_time, tmax
    return k


cdef inline Py_ssize_t _close(const double* t, const double* x, const double* y, Py_ssize_t a, Py_ssize_t b,
                              Py_ssize_t min_samples, double min_dur, _Events* out, Py_ssize_t k) noexcept nogil:
    """Keep the run [a, b) if long enough, as event k; its centroid as numpy's ``add.reduceat`` / count: the
    first value + the pairwise sum of the rest, divided by the count."""
    if b - a >= min_samples and t[b - 1] - t[a] >= min_dur:
        out.s[k] = a
        out.e[k] = b
        out.t0[k] = t[a]
        out.t1[k] = t[b - 1]
        out.x[k] = (x[a] + _pairwise_sum(x, a + 1, b - a - 1)) / <double>(b - a)
        out.y[k] = (y[a] + _pairwise_sum(y, a + 1, b - a - 1)) / <double>(b - a)
        return k + 1
    return k


cdef double _pairwise_sum(const double* a, Py_ssize_t lo, Py_ssize_t n) noexcept nogil:
    """numpy's pairwise sum of a[lo:lo + n]: plain below 8 values; up to 128, 8 interleaved accumulators
    combined as a tree, then the rest; above, the sum of two halves, the first a multiple of 8 long."""
    cdef Py_ssize_t i, m, h
    cdef double r, r0, r1, r2, r3, r4, r5, r6, r7
    if n < 8:
        r = 0.0
        for i in range(n):
            r += a[lo + i]
        return r
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        m = n - n % 8
        i = 8
        while i < m:
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        r = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            r += a[lo + i]
            i += 1
        return r
    h = n // 2
    h -= h % 8
    return _pairwise_sum(a, lo, h) + _pairwise_sum(a, lo + h, n - h)
