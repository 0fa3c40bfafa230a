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

from libc.math cimport fabs, isfinite


def ivt_events(const double[::1] t, const double[::1] x, const double[::1] y, valid, *, double threshold,
               double aspect, double max_gap_s, Py_ssize_t min_samples, double min_duration_s, bint want_range,
               run_parts=None):
    """``(start, end, t_start, t_end, x, y, n_samples, big)`` of the I-VT fixations (numpy arrays; big = max
    |x|, |y| over the usable samples when ``want_range``, else 0). ``valid``: bool array or None.

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

    def part(Py_ssize_t lo, Py_ssize_t hi):
        return _scan_part(&sc, lo, hi)

    pieces = run_parts(part, n) if run_parts is not None and n else [part(0, n)]
    start = np.concatenate([p[0] for p in pieces])
    end = np.concatenate([p[1] for p in pieces])
    sums_x = np.concatenate([p[2] for p in pieces])
    sums_y = np.concatenate([p[3] for p in pieces])
    count = end - start
    nf = count.astype(np.float64)
    t_arr = np.asarray(t)
    return (start, end, t_arr[start], t_arr[end - 1], sums_x / nf, sums_y / nf, count,
            max([p[4] for p in pieces], default=0.0))


cdef struct _Scan:
    const double* t
    const double* x
    const double* y
    const unsigned char* v
    Py_ssize_t n
    bint has_valid
    double thr2, a2, max_gap, min_dur
    Py_ssize_t min_samples
    bint want_range


cdef tuple _scan_part(_Scan* sc, Py_ssize_t lo, Py_ssize_t hi):
    """The events of the part [boundary(lo), boundary(hi)) and its big: (start, end, sum x, sum y, big)."""
    cdef Py_ssize_t begin = 0, end = sc.n, k
    cdef double big = 0.0
    with nogil:
        if lo > 0:
            begin = _boundary(sc, lo)
        if hi < sc.n:
            end = _boundary(sc, hi)
    cdef Py_ssize_t cap = (end - begin) // (sc.min_samples if sc.min_samples > 1 else 1) + 1
    s_arr, e_arr = np.empty(cap, np.int64), np.empty(cap, np.int64)
    sx_arr, sy_arr = np.empty(cap), np.empty(cap)
    cdef long long[::1] s = s_arr
    cdef long long[::1] e = e_arr
    cdef double[::1] sx = sx_arr
    cdef double[::1] sy = sy_arr
    with nogil:
        k = _scan(sc, begin, end, &s[0], &e[0], &sx[0], &sy[0], &big) if end > begin else 0
    return s_arr[:k].copy(), e_arr[:k].copy(), sx_arr[:k].copy(), sy_arr[:k].copy(), big


cdef inline bint _usable(const double* t, const double* x, const double* y, const unsigned char* v,
                         bint has_valid, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """Finite t, x, y and valid; False outside the samples."""
    if i < 0 or i >= n:
        return False
    return isfinite(t[i]) and isfinite(x[i]) and isfinite(y[i]) and (not has_valid or v[i])


cdef inline bint _slow(const double* t, const double* x, const double* y, Py_ssize_t i, bint ok_prev,
                       bint ok_here, bint ok_next, double thr2, double a2) noexcept nogil:
    """The speed test at sample i: the central difference when both neighbours are usable (squared:
    dx^2 + a^2 dy^2 < (thr dt)^2, in `ivt_pass`'s order of operations), else the forward step, else the
    backward one; never slow when i is not usable."""
    cdef double dx, dy, dt, d2
    if not ok_here:
        return False
    if ok_prev and ok_next:
        dx = x[i + 1] - x[i - 1]
        dy = y[i + 1] - y[i - 1]
        dt = t[i + 1] - t[i - 1]
        d2 = dy * dy
        if a2 != 1.0:
            d2 = d2 * a2
        return dx * dx + d2 < dt * dt * thr2
    if ok_next:
        return _step_slow(t, x, y, i, i + 1, thr2, a2)
    if ok_prev:
        return _step_slow(t, x, y, i - 1, i, thr2, a2)
    return False


cdef Py_ssize_t _boundary(_Scan* sc, Py_ssize_t c) noexcept nogil:
    """The first sample i >= c (or n) where no run goes on from i - 1: i is not slow, or follows a time gap."""
    cdef const double* t = sc.t
    cdef const double* x = sc.x
    cdef const double* y = sc.y
    cdef Py_ssize_t i = c, n = sc.n
    while i < n:
        if not _slow(t, x, y, i, _usable(t, x, y, sc.v, sc.has_valid, n, i - 1),
                     _usable(t, x, y, sc.v, sc.has_valid, n, i), _usable(t, x, y, sc.v, sc.has_valid, n, i + 1),
                     sc.thr2, sc.a2):
            return i
        if t[i] - t[i - 1] > sc.max_gap:
            return i
        i += 1
    return n


cdef Py_ssize_t _scan(_Scan* sc, Py_ssize_t begin, Py_ssize_t end, long long* s, long long* e, double* sx,
                      double* sy, double* big) noexcept nogil:
    """One pass over [begin, end): each sample's test, the current run extended, split at a time gap or
    closed; a closed run long enough is kept and summed. Returns the number of events."""
    cdef const double* t = sc.t
    cdef const double* x = sc.x
    cdef const double* y = sc.y
    cdef const unsigned char* v = sc.v
    cdef bint has_valid = sc.has_valid, want_range = sc.want_range
    cdef double thr2 = sc.thr2, a2 = sc.a2, max_gap = sc.max_gap, min_dur = sc.min_dur, m = 0.0
    cdef Py_ssize_t n = sc.n, min_samples = sc.min_samples, i, k = 0, start = -1
    cdef bint ok_prev = _usable(t, x, y, v, has_valid, n, begin - 1), ok_next, slow
    cdef bint ok_here = _usable(t, x, y, v, has_valid, n, begin)
    for i in range(begin, end):
        ok_next = _usable(t, x, y, v, has_valid, n, i + 1)
        slow = _slow(t, x, y, i, ok_prev, ok_here, ok_next, thr2, a2)
        if ok_here and want_range:
            m = max(m, fabs(x[i]), fabs(y[i]))
        if start >= 0 and (not slow or t[i] - t[i - 1] > max_gap):  # the open run ends before i
            k = _close(t, x, y, start, i, min_samples, min_dur, s, e, sx, sy, k)
            start = -1
        if slow and start < 0:
            start = i
        ok_prev = ok_here
        ok_here = ok_next
    if start >= 0:
        k = _close(t, x, y, start, end, min_samples, min_dur, s, e, sx, sy, k)
    big[0] = m
    return k


cdef inline bint _step_slow(const double* t, const double* x, const double* y, Py_ssize_t i, Py_ssize_t j,
                            double thr2, double a2) noexcept nogil:
    """The speed test on a one-sided step (i, j), as `streamgaze.fixations._step_slow`."""
    cdef double dt = t[j] - t[i], dx = x[j] - x[i], dy = y[j] - y[i]
    cdef double d2 = dx * dx + (dy * dy * a2 if a2 != 1.0 else dy * dy)
    return dt > 0 and d2 < thr2 * (dt * dt)


cdef inline Py_ssize_t _close(const double* t, const double* x, const double* y, Py_ssize_t a, Py_ssize_t b,
                              Py_ssize_t min_samples, double min_dur, long long* s, long long* e,
                              double* sx, double* sy, Py_ssize_t k) noexcept nogil:
    """Keep the run [a, b) if long enough; its sums as numpy's ``add.reduceat``: first value + pairwise rest."""
    if b - a >= min_samples and t[b - 1] - t[a] >= min_dur:
        s[k] = a
        e[k] = b
        sx[k] = x[a] + _pairwise_sum(x, a + 1, b - a - 1)
        sy[k] = y[a] + _pairwise_sum(y, a + 1, b - a - 1)
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
