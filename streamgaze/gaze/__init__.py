"""Gaze: device formats into the store, video access, time alignment, geometry, fixations and episodes."""
