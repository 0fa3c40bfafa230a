"""Dataset recipes: declarative YAML that says how a downloaded dataset's files make recordings.

A recipe never holds code. Its ``files`` rules are regular expressions searched in each file's path relative to the
dataset root (POSIX separators); the first rule that matches a file claims it. A rule's named group ``id`` is the
recording the file belongs to (files pair up by equal ids), its ``role`` says what the file is (``gaze``, ``video``,
``annotations``, ``extra``, ``ignore``) and ``format`` names the ingest loader that reads it (``streamgaze
formats``). Recipes come from plugins through the ``streamgaze_dataset_recipes`` hook; a malformed one is one line
naming its file. The rules are in docs/datasets.md.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streamgaze.errors import StreamGazeError
from streamgaze.plugins.manager import get_plugins, registry

Role = Literal["gaze", "video", "annotations", "extra", "ignore"]
#: What a check-based pitfall warning is attached to (see `streamgaze.gaze.datasets.checks`).
Condition = Literal["rate_mismatch", "low_coverage", "outside_video", "many_invalid"]


class FileRule(BaseModel):
    """One kind of file: which paths (``pattern``), what it is (``role``), which loader reads it (``format``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    pattern: str
    format: str | None = None
    #: One file for every recording (EGTEA's split files, HoloAssist's annotation JSON): no ``id`` group; given to
    #: each recording whose id the file mentions.
    shared: bool = False
    #: ``extra`` files: handed to the gaze or annotations loader with the main file (else only hashed, so a change
    #: re-ingests the recording).
    pass_to: Literal["gaze", "annotations"] | None = None
    #: Several files of this role for one recording: an error (``one``) or the last in path order (``last``, for
    #: numbered export folders such as Pupil Player's ``exports/000``, ``001``).
    pick: Literal["one", "last"] = "one"
    #: A known pitfall of files this rule matches, shown with the recording (e.g. Ego4D gaze saved as ``.mp4``).
    warning: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "FileRule":
        has_id = "id" in re.compile(self.pattern).groupindex
        if self.role == "ignore":
            return self
        if self.shared and has_id:
            raise ValueError("a shared rule has no (?P<id>...) group")
        if not self.shared and not has_id:
            raise ValueError(f"pattern needs a (?P<id>...) group naming the recording (or shared: true): {self.pattern}")
        if self.role in ("gaze", "annotations") and not self.format:
            raise ValueError(f"a {self.role} rule needs a format (a loader name, see `streamgaze formats`)")
        if self.role in ("gaze", "video") and self.shared:
            raise ValueError(f"a {self.role} file belongs to one recording; shared is for annotations and extra files")
        return self

    @property
    def regex(self) -> re.Pattern:
        return re.compile(self.pattern)


class Facts(BaseModel):
    """What the dataset's documentation says about every recording; checks compare the measured values to them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Literal["head-mounted", "screen"] = "head-mounted"
    gaze_rate_hz: float | None = Field(None, gt=0)
    video_fps: float | None = Field(None, gt=0)
    frame_size: tuple[int, int] | None = None
    camera: str | None = None


class Pitfall(BaseModel):
    """A warning the summary shows when a check fires (``when``), in the dataset's own terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: Condition
    warning: str


class Recipe(BaseModel):
    """A dataset recipe (one YAML file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str
    homepage: str | None = None
    licence: str
    #: Roles every complete recording has; a recording lacking one is listed (``gaze without video``) and skipped.
    requires: list[Literal["gaze", "video", "annotations"]] = ["gaze", "video"]
    files: list[FileRule] = Field(min_length=1)
    facts: Facts = Facts()
    pitfalls: list[Pitfall] = []
    path: str = ""  # the file it was read from (set by `load_recipe`)

    @model_validator(mode="after")
    def _requires_have_rules(self) -> "Recipe":
        roles = {r.role for r in self.files}
        for role in self.requires:
            if role not in roles:
                raise ValueError(f"requires {role!r} but no files rule has that role")
        return self


def load_recipe(path: Path) -> Recipe:
    """Read and validate one recipe file; anything wrong is one `StreamGazeError` naming the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StreamGazeError(f"{path}: cannot read recipe ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise StreamGazeError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise StreamGazeError(f"{path}: a recipe is a mapping (name, title, files, ...), got {type(data).__name__}")
    try:
        recipe = Recipe(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "recipe"
        raise StreamGazeError(f"{path}: {loc}: {err['msg']}") from None
    if recipe.name != path.stem:
        raise StreamGazeError(f"{path}: name {recipe.name!r} differs from the file name {path.stem!r}")
    return recipe.model_copy(update={"path": str(path)})


def recipe_paths() -> dict[str, tuple[Path, str]]:
    """``{name: (path, plugin label)}`` of every recipe file the plugins provide; a name given twice is an error."""
    found: dict[str, tuple[Path, str]] = {}
    for source, paths in get_plugins().collect("streamgaze_dataset_recipes"):
        for p in paths:
            p = Path(p)
            if p.stem in found:
                raise StreamGazeError(f"dataset recipe {p.stem!r} is provided by both {found[p.stem][1]} and "
                                      f"{source.label}")
            found[p.stem] = (p, source.label)
    return dict(sorted(found.items()))


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, validated; an unknown name lists the available ones."""
    paths = recipe_paths()
    if name not in paths:
        raise StreamGazeError(f"unknown dataset {name!r}; available: {', '.join(paths) or 'none'}"
                              f"{get_plugins().broken_note()}")
    recipe = load_recipe(paths[name][0])
    formats = registry("gaze_loaders")
    for i, rule in enumerate(recipe.files):
        if rule.format and rule.format not in formats:
            raise StreamGazeError(f"{recipe.path}: files.{i}.format: unknown format {rule.format!r} (`streamgaze "
                                  f"formats` lists them){get_plugins().broken_note()}")
    return recipe
