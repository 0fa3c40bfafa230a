"""The one module plugins import: every name a loader, detector, labeller, model, task or validator may use.

Everything else in ``streamgaze`` may change between releases; what is listed here changes only with a note in
the changelog. The layers contract in ``pyproject.toml`` (``lint-imports``) keeps plugins, the built-in ones
included, from importing anything else of the core.
"""
from __future__ import annotations

from streamgaze.errors import ExternalCallsFailed, InputError, PluginError, SpecError, StreamGazeError, shorten
from streamgaze.eval.models import ModelOptions, Request
from streamgaze.gaze.align import frame_index, pairwise_frame_gaze
from streamgaze.gaze.fixations import (
    check_times,
    compiled_ivt,
    compiled_threads,
    events_columns,
    events_table,
    ivt_pass,
    ok_from_bad,
    parallel_ranges,
    runs,
    scene_flow,
    slow_mask,
)
from streamgaze.gaze.geometry import DEFAULT_DEG_PER_UNIT, FOV_RADIUS, OVERLAY_FOV_RADIUS
from streamgaze.gaze.ingest import (
    GazeUnits,
    LoadContext,
    check_text,
    gaze_table,
    read_csv_columns,
    read_header,
    read_json,
    read_text,
    read_text_table,
    require_file,
    to_float,
    validate_actions,
)
from streamgaze.gaze.overlay import GazeTrack, draw_gaze, resolve_video_path
from streamgaze.gaze.video import read_frames_at
from streamgaze.llm import cache as llm
from streamgaze.llm.batch import UNANSWERED, settings_digest
from streamgaze.llm.client import (
    DEFAULT_ENDPOINT,
    RetriesExhausted,
    call_with_retries,
    chat_json,
    image_part,
    make_client,
    post_chat,
    redact_url,
    resolve_api_key,
    url_secrets,
)
from streamgaze.llm.fleet import CALL_INFO, Fleet, openai_fleet
from streamgaze.objects.stage import Labelled, Labeller
from streamgaze.plugins.hookspecs import hookimpl
from streamgaze.progress import stage
from streamgaze.store import open_store
from streamgaze.tasks import names
from streamgaze.tasks.blind import BLIND_BASELINES, blind_answers
from streamgaze.tasks.api import (
    LETTERS,
    OPTION_COUNT,
    Action,
    Candidate,
    Draft,
    Episode,
    PresentParams,
    Skip,
    TaskLogic,
    Timeline,
    ms,
    present_candidates,
)
from streamgaze.tasks.draw import distractors_assured, draw_distractors
from streamgaze.tasks.export import merge_intervals, mmss, released_intervals
from streamgaze.tasks.llm_step import LLMStep, llm_step_params
from streamgaze.tasks.proactive import ProactiveParams, alert_candidates, alert_points, fixture_or_vague
from streamgaze.tasks.rng import choice, sample

__all__ = [
    "BLIND_BASELINES", "blind_answers",
    "Action", "alert_candidates", "check_text", "read_json", "read_text", "shorten", "alert_points", "call_with_retries", "Candidate", "check_times", "choice",
    "compiled_ivt", "compiled_threads", "DEFAULT_DEG_PER_UNIT", "DEFAULT_ENDPOINT", "distractors_assured",
    "Draft", "draw_distractors", "draw_gaze", "Episode", "events_columns", "events_table", "fixture_or_vague",
    "FOV_RADIUS", "frame_index", "gaze_table", "GazeTrack", "GazeUnits", "hookimpl", "image_part",
    "InputError", "ivt_pass", "Labelled", "Labeller", "llm", "LLMStep", "llm_step_params", "LoadContext", "make_client",
    "redact_url", "url_secrets", "settings_digest", "chat_json", "post_chat", "UNANSWERED", "Fleet", "openai_fleet", "CALL_INFO",
    "merge_intervals", "mmss", "ModelOptions", "ms", "names", "ok_from_bad", "open_store", "OPTION_COUNT", "LETTERS", "OVERLAY_FOV_RADIUS",
    "pairwise_frame_gaze",
    "parallel_ranges", "ExternalCallsFailed", "PluginError", "present_candidates", "PresentParams", "ProactiveParams", "released_intervals",
    "read_csv_columns", "read_frames_at", "read_header", "read_text_table", "Request", "require_file",
    "resolve_api_key", "resolve_video_path", "RetriesExhausted", "runs", "sample", "scene_flow", "Skip",
    "slow_mask", "SpecError", "stage", "StreamGazeError", "TaskLogic", "Timeline", "to_float",
    "validate_actions",
]
