"""The built-in I-VT detector's speed test and its two paths (the detector itself is the ``ivt`` plugin).

- `loop` (``loop.pyx``): the compiled loop, built from Cython at install; optional (no C compiler: not built).
- `compiled`: `compiled_ivt`, the loop when it was built and not switched off (``STREAMGAZE_COMPILED=0``).
- `numpy_pass`: the numpy path (`ivt_pass`, `slow_mask`, `span_slow_mask`), the same results bit for bit.
- `parallel`: thread settings and `parallel_ranges`, the split of a sample range over threads.

The package re-exports nothing: import from the modules (or from `streamgaze.gaze.fixations`).
"""
