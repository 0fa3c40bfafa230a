"""GSM (tasks.md 2.3): which sequence of three gazed groups matches the user's gaze pattern?

Options are sequence texts ``{a,b}>{c}>{d,e}``: each group's names sorted by key, compared as sequences of
sets. The task builds its three distractors itself (one reordering, two size-preserving fakes) with the
candidate's generator; the engine checks they are distinct and free of every real window (X), then orders them.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import permutations

from pydantic import BaseModel, ConfigDict, Field

from streamgaze.plugins.api import Candidate, Draft, Skip, TaskLogic, choice, names, sample

TASK_ID = "past_gaze_sequence_matching"


class GsmParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gsm_max_tries: int = Field(50, ge=0, description="redraws of a content fake that comes out invalid")


def sequence_text(groups) -> str:
    """``{a,b}>{c}>{d,e}``: names sorted by key inside each group, groups in order."""
    return ">".join(_group_text(frozenset(g)) for g in groups)


@lru_cache(maxsize=65536)
def _group_text(group: frozenset[str]) -> str:
    return "{" + ",".join(names.sorted_by_key(group)) + "}"


def _has_equal_neighbours(groups) -> bool:
    return any(frozenset(a) == frozenset(b) for a, b in zip(groups, groups[1:]))


def real_windows(usable) -> list[tuple]:
    """Every window of three adjacent usable episodes."""
    return list(zip(usable, usable[1:], usable[2:]))


def _window_texts(video) -> tuple[list[str], list[str]]:
    """Sequence texts (and their keys) of every real window of the whole video, made once per video."""
    def make():
        texts = [sequence_text([e.fov_set for e in w]) for w in real_windows(video.usable)]
        return texts, [names.key(t, "sequence") for t in texts]

    return video.memo((TASK_ID, "window_texts"), make)


class GazeSequenceMatching(TaskLogic):
    Params = GsmParams

    def candidates(self, video, params):
        for window in real_windows(video.usable):
            ids = tuple(e.id for e in window)
            yield Candidate(f"{ids[0]}..{ids[2]}", episode=window[2], data={"episodes": ids})

    def screen(self, cand, video, params):
        if _has_equal_neighbours([video.episode(i).fov_set for i in cand.data["episodes"]]):
            return Skip("equal_consecutive_groups")
        return None

    def build(self, cand, past, params, rng, *, video):
        window = [past.episode(i) for i in cand.data["episodes"]]
        groups = [e.fov_set for e in window]
        answer = sequence_text(groups)
        # Every real window seen so far would also be a valid answer (the answer's own window among them).
        texts, keys = _window_texts(video)  # past.usable is a prefix of video.usable
        n_real = max(0, len(past.usable) - 2)
        real = texts[:n_real]
        taken = {names.key(answer, "sequence"), *keys[:n_real]}

        distractors = []
        # 1: the same groups in another order (a set sequence that is no real window).
        reorders = [sequence_text([groups[i] for i in p]) for p in permutations(range(3)) if p != (0, 1, 2)]
        reorders = [t for t in reorders if names.key(t, "sequence") not in taken]
        if reorders:
            order = choice(rng, reorders, "sequence")
            distractors.append(order)
            taken.add(names.key(order, "sequence"))
        # 2-3: fakes with the answer's group sizes, drawn from FOV<=t; redrawn while invalid.
        pool = names.sorted_by_key(past.fov_names)
        for _ in range(2):
            for _try in range(1 + params.gsm_max_tries):
                fake = [sample(rng, pool, len(g)) for g in groups]
                text = sequence_text(fake)
                if not _has_equal_neighbours(fake) and names.key(text, "sequence") not in taken:
                    distractors.append(text)
                    taken.add(names.key(text, "sequence"))
                    break
        # Fewer than 3 distractors: the engine skips the candidate as too_few_distractors.
        return Draft(
            answer=answer,
            distractors=distractors,
            exclude=real,
            evidence={
                "episodes": [e.id for e in window],
                "correct_sequence": [names.sorted_by_key(g) for g in groups],
            },
        )

    def release_fields(self, question, store):
        return {"correct_sequence": [list(g) for g in question["evidence"]["correct_sequence"]]}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"gaze_sequence_matching": GazeSequenceMatching()}
