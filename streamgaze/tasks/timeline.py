"""The timeline of one video as tasks see it: episodes with disjoint object roles, and actions.

`Timeline.before(t)` is the causal view H(t) (tasks.md 0): episodes and actions with ``t_start < t``.
The engine hands every candidate such a view, cut at its question time.
"""
from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable, Mapping, TypeVar

from streamgaze.errors import InputError
from streamgaze.tasks import names

T = TypeVar("T")


def ms(t: float) -> float:
    """Times are rounded to 1 ms when read and derived, so comparisons are exact."""
    return round(float(t), 3)


@dataclass(frozen=True)
class Episode:
    id: str
    t_start: float
    t_end: float
    gazed: str | None
    fov: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    x: float | None = None
    y: float | None = None

    @property
    def usable(self) -> bool:
        return self.gazed is not None

    # Cached: every task asks an episode for these, many times per video.
    @cached_property
    def duration(self) -> float:
        return ms(self.t_end - self.t_start)

    @cached_property
    def group(self) -> tuple[str, ...]:
        """FOV(e) as question text lists it: the gazed name first, then the fov names sorted."""
        return ((self.gazed,) if self.gazed else ()) + tuple(sorted(self.fov))

    @cached_property
    def fov_set(self) -> frozenset[str]:
        return frozenset(self.group)

    @cached_property
    def out_set(self) -> frozenset[str]:
        return frozenset(self.outside)

    @cached_property
    def seen_set(self) -> frozenset[str]:
        return self.fov_set | self.out_set


@dataclass(frozen=True)
class Action:
    t_start: float
    t_end: float
    label: str


@dataclass(frozen=True)
class AttributeRow:
    """One labeller row's attributes for a name: ``{attribute: value or [values]}``."""

    name: str
    episode_id: str
    t_start: float
    values: Mapping[str, object]


@dataclass(frozen=True)
class Timeline:
    video_id: str
    dataset: str
    duration_s: float
    episodes: tuple[Episode, ...]
    actions: tuple[Action, ...] = ()
    attribute_rows: tuple[AttributeRow, ...] = ()
    cut_s: float | None = field(default=None, compare=False)
    root: "Timeline | None" = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.root is None:  # a whole video: keep everything in start order, so views are prefixes
            for name in ("episodes", "actions", "attribute_rows"):
                object.__setattr__(self, name, tuple(sorted(getattr(self, name), key=lambda r: r.t_start)))

    def before(self, t: float) -> "Timeline":
        """H(t): what happened before ``t`` (episodes, actions and attribute rows with ``t_start < t``)."""
        t = ms(t)
        root = self.root or self
        if self is root:  # every task cuts the same video at the same few times: share the views (and their caches)
            view = root._views.get(t)
            if view is None:
                view = root._views[t] = self._cut(t)
            return view
        return self._cut(t)

    @cached_property
    def _views(self) -> dict[float, "Timeline"]:
        return {}

    def drop_views(self) -> None:
        """Forget the shared views (`before`). They and the video reference each other, so a video done with
        would otherwise wait for the cyclic garbage collector, and with it everything its views cached."""
        self.__dict__.pop("_views", None)

    def is_cut_of(self, video: "Timeline") -> bool:
        """Whether this is ``video`` or a view of it, so its episodes, actions and rows are ``video``'s first n."""
        return self is video or self.root is video

    def memo(self, key, make: Callable[[], T]) -> T:
        """``make()``, computed once per timeline object and kept on it: what a task derives from a whole video
        (or a view) and needs for every candidate. ``key`` is the task's own, e.g. ``("gsm", "windows")``."""
        memo = self._memo
        if key not in memo:
            memo[key] = make()
        return memo[key]

    @cached_property
    def _memo(self) -> dict:
        return {}

    def _cut(self, t: float) -> "Timeline":
        root = self.root or self
        starts = root._starts
        return Timeline(
            self.video_id,
            self.dataset,
            self.duration_s,
            self.episodes[: bisect_left(starts["episodes"], t, hi=len(self.episodes))],
            self.actions[: bisect_left(starts["actions"], t, hi=len(self.actions))],
            self.attribute_rows[: bisect_left(starts["attribute_rows"], t, hi=len(self.attribute_rows))],
            cut_s=t,
            root=root,
        )

    @cached_property
    def _starts(self) -> dict[str, list[float]]:
        return {name: [r.t_start for r in getattr(self, name)] for name in ("episodes", "actions", "attribute_rows")}

    @cached_property
    def _prefix_names(self) -> list[tuple[frozenset, frozenset, frozenset]]:
        """(Gazed, FOV, OUT) over the first i episodes, for every i: what every view of this video asks for."""
        gazed, fov, out = frozenset(), frozenset(), frozenset()
        prefix = [(gazed, fov, out)]
        for e in self.episodes:
            gazed = gazed | {e.gazed} if e.usable else gazed
            fov, out = fov | e.fov_set, out | e.out_set
            prefix.append((gazed, fov, out))
        return prefix

    def _names(self, i: int) -> frozenset[str]:
        return (self.root or self)._prefix_names[len(self.episodes)][i]

    @cached_property
    def usable(self) -> tuple[Episode, ...]:
        return tuple(e for e in self.episodes if e.usable)

    def episode(self, episode_id: str) -> Episode:
        for e in self.episodes:
            if e.id == episode_id:
                return e
        raise KeyError(episode_id)

    @property
    def gazed_names(self) -> frozenset[str]:
        return self._names(0)

    @property
    def fov_names(self) -> frozenset[str]:
        return self._names(1)

    @property
    def out_names(self) -> frozenset[str]:
        return self._names(2)

    @cached_property
    def seen_names(self) -> frozenset[str]:
        return self.fov_names | self.out_names

    def attributes_of(self, name: str) -> tuple[AttributeRow, ...]:
        return tuple(r for r in self.attribute_rows if r.name == name)


def make_episode(
    episode_id: str,
    t_start: float,
    t_end: float,
    roles: Iterable[tuple[str, str]],
    x: float | None = None,
    y: float | None = None,
) -> Episode:
    """An episode from raw ``(name, role)`` rows: names keyed, human names deleted, roles made disjoint
    (a name keeps its first role in the order gazed > fov > outside), one gazed name at most."""
    by_role: dict[str, list[str]] = {"gazed": [], "fov": [], "outside": []}
    for name, role in roles:
        k = names.key(name)
        if k and not names.in_list(k, "human"):
            by_role[role].append(k)
    gazed = sorted(set(by_role["gazed"]))
    # More than one gazed row: the first by key is representative, the rest were in the FOV too.
    representative = gazed[0] if gazed else None
    taken = set(gazed)
    fov = sorted(set(gazed[1:] + by_role["fov"]) - {representative})
    taken |= set(fov)
    outside = sorted(set(by_role["outside"]) - taken)
    return Episode(episode_id, ms(t_start), ms(t_end), representative, tuple(fov), tuple(outside), x, y)


def load_timelines(store, video_ids: list[str] | None = None) -> list[Timeline]:
    """Every video's timeline from the store, in video_id order. Overlapping episodes are a load error."""
    rows = TimelineRows(store)
    wanted = None if video_ids is None else set(video_ids)
    return [rows.timeline(i) for i, v in enumerate(rows.video_ids) if wanted is None or v in wanted]


class TimelineRows:
    """The store's timeline rows, fetched at once and grouped per video; `timeline(i)` builds one video's
    timeline from them, so generation's worker processes each build only the videos they run."""

    def __init__(self, store):
        con = store.con
        self.path = store.path
        self.videos = con.execute(
            "SELECT video_id, coalesce(dataset, ''), coalesce(duration_s, 0) FROM videos ORDER BY video_id"
        ).fetchall()
        self.video_ids = [v[0] for v in self.videos]
        self.episodes = _by_video(con.execute(
            "SELECT video_id, episode_id, t_start, t_end, x, y FROM episodes ORDER BY video_id, t_start, t_end, episode_id"
        ).fetchall())
        self.objects: dict[tuple[str, str], list] = {}
        for vid, eid, name, role, attrs in con.execute(
            "SELECT video_id, episode_id, name, role, attributes FROM objects ORDER BY video_id, episode_id, role, name"
        ).fetchall():
            self.objects.setdefault((vid, eid), []).append((name, role, attrs))
        self.actions = _by_video(con.execute(
            "SELECT video_id, t_start, t_end, label FROM actions ORDER BY video_id, t_start, t_end, label"
        ).fetchall())
        self._parsed: dict = {}  # attribute JSON text -> dict: labellers repeat the same text; rows only read it

    def keep_videos(self, keep) -> None:
        """Only the videos for whose id ``keep(video_id)`` is true (a shard's); the others' rows are dropped."""
        self.videos = [v for v in self.videos if keep(v[0])]
        self.video_ids = [v[0] for v in self.videos]
        wanted = set(self.video_ids)
        self.episodes = {k: v for k, v in self.episodes.items() if k in wanted}
        self.actions = {k: v for k, v in self.actions.items() if k in wanted}
        self.objects = {k: v for k, v in self.objects.items() if k[0] in wanted}

    def timeline(self, i: int) -> Timeline:
        video_id, dataset, duration = self.videos[i]
        episodes, attr_rows = [], []
        for vid, eid, t0, t1, x, y in self.episodes.get(video_id, ()):
            rows = self.objects.get((vid, eid), [])
            episode = make_episode(eid, t0, t1, [(n, r) for n, r, _ in rows if r in ("gazed", "fov", "outside")], x, y)
            if episodes and episode.t_start < episodes[-1].t_end:
                raise InputError(
                    self.path, f"episodes {episodes[-1].id} and {eid} of video {video_id!r} overlap", column="episodes"
                )
            episodes.append(episode)
            for name, _role, attrs in rows:
                values = self._attributes(attrs)
                k = names.key(name)
                if values and k:
                    attr_rows.append(AttributeRow(k, eid, episode.t_start, values))
        actions = tuple(Action(ms(t0), ms(t1), label) for _vid, t0, t1, label in self.actions.get(video_id, ()) if label)
        return Timeline(video_id, dataset, ms(duration), tuple(episodes), actions, tuple(attr_rows))

    def _attributes(self, text) -> dict:
        if not isinstance(text, str):
            return _parse_attributes(text)
        values = self._parsed.get(text)
        if values is None:
            values = self._parsed[text] = _parse_attributes(text)
        return values


def _by_video(rows) -> dict[str, list]:
    """Rows (video_id first, sorted by it) grouped per video, keeping their order."""
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return grouped


def _parse_attributes(text) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text) if isinstance(text, str) else dict(text)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}
