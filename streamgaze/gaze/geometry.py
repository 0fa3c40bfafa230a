"""Geometry shared by every stage: the field-of-view radius and the angular scale of a recording.

Radii are fractions of the frame width, so one number means the same share of the image on any camera.
"""
from __future__ import annotations

#: The field of view around the gaze point that decides which objects are "inside" it: the reference's 96 px of a
#: 640 px-wide frame. The synthetic world's truth and the openai labeller's default use it.
FOV_RADIUS = 0.15

#: The circle drawn around the gaze dot on overlay frames (`render overlay`, `eval --gaze-prompt overlay`, the
#: review page's clips). Smaller than `FOV_RADIUS` so the drawing covers less of the scene the model must read.
OVERLAY_FOV_RADIUS = 0.12

#: Degrees per normalised unit assumed for normalised scene-camera coordinates when a recording gives no angular
#: scale: the horizontal field of view of a Pupil Invisible / Ego4D scene camera (1088 px, ~82 deg). Vertical
#: distances are scaled by the aspect (height / width) so one degree is the same in x and y. `streamgaze fixations`
#: says when it assumes it.
DEFAULT_DEG_PER_UNIT = 82.0
