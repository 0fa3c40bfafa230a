"""Discovery: which files under a dataset root make which recordings, before anything is read or written.

Every file under ROOT (recursively; hidden files and folders skipped) is matched against the recipe's rules in
order; the first match claims it. Files with the same ``id`` make one recording. A recording with every role the
recipe ``requires`` is complete; the others are listed by what they lack (``gaze without video``), with the files no
rule matched.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from streamgaze.errors import InputError
from streamgaze.gaze.datasets.recipes import FileRule, Recipe

#: The order files are listed (and hashed) in.
ROLE_ORDER = ("gaze", "video", "annotations", "extra")
#: Bytes read from each shared file to decide which recordings it mentions (annotation files are small).
SHARED_READ_LIMIT = 256 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file of a recording: its path, the rule that claimed it."""

    path: Path
    rule: FileRule


@dataclass
class Recording:
    """The files of one recording, by role, and the pitfalls its file names show."""

    id: str
    files: dict[str, list[SourceFile]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problem: str | None = None  # e.g. two gaze files for one recording

    def first(self, role: str) -> SourceFile | None:
        files = self.files.get(role)
        return files[0] if files else None

    def all_files(self) -> list[SourceFile]:
        order = {role: i for i, role in enumerate(ROLE_ORDER)}
        return [f for role in sorted(self.files, key=lambda r: order.get(r, len(order))) for f in self.files[role]]


@dataclass
class Discovery:
    """What a dataset root holds: complete recordings, incomplete ones (with what they lack), unmatched files."""

    root: Path
    complete: list[Recording]
    incomplete: list[tuple[Recording, list[str]]]
    unmatched: list[Path]
    ambiguous: list[Recording]


def walk_files(root: Path) -> list[Path]:
    """Every file under ``root``, in path order, without hidden files or folders (``.DS_Store``, ``.git``)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return sorted(out)


def discover(recipe: Recipe, root: Path, only: str | None = None) -> Discovery:
    """Match the files under ``root`` to the recipe's rules and group them into recordings (``only``: a glob on
    recording ids)."""
    root = Path(root)
    if not root.exists():
        raise InputError(root, "no such folder")
    if not root.is_dir():
        raise InputError(root, "is a file, expected the dataset's folder")
    rules = [(rule, rule.regex) for rule in recipe.files]
    recordings: dict[str, Recording] = {}
    shared: list[SourceFile] = []
    unmatched: list[Path] = []
    for path in walk_files(root):
        rel = path.relative_to(root).as_posix()
        for rule, regex in rules:
            m = regex.search(rel)
            if m is None:
                continue
            if rule.role == "ignore":
                break
            if rule.shared:
                shared.append(SourceFile(path, rule))
                break
            rec = recordings.setdefault(m.group("id"), Recording(m.group("id")))
            rec.files.setdefault(rule.role, []).append(SourceFile(path, rule))
            if rule.warning and rule.warning not in rec.warnings:
                rec.warnings.append(rule.warning)
            break
        else:
            unmatched.append(path)
    if only:
        recordings = {k: v for k, v in recordings.items() if fnmatch.fnmatchcase(k, only)}
    _attach_shared(recordings, shared)
    complete, incomplete, ambiguous = [], [], []
    for rid in sorted(recordings):
        rec = recordings[rid]
        for role, files in rec.files.items():
            mains = [f for f in files if not f.rule.shared]
            if len(mains) > 1 and role in ("gaze", "video"):
                if all(f.rule.pick == "last" for f in mains):
                    rec.files[role] = [max(mains, key=lambda f: f.path.as_posix())]
                else:
                    names = ", ".join(str(f.path.relative_to(root)) for f in mains[:3])
                    rec.problem = f"{len(mains)} {role} files for one recording ({names})"
        if rec.problem:
            ambiguous.append(rec)
            continue
        missing = [r for r in recipe.requires if r not in rec.files]
        (incomplete.append((rec, missing)) if missing else complete.append(rec))
    return Discovery(root, complete, incomplete, unmatched, ambiguous)


_TOKEN = re.compile(r"[A-Za-z0-9_.\-]+")
_PLAIN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


def mentioned_names(text: str) -> set[str]:
    """Every word of ``text`` made of letters, digits, ``_ . -``, and each of its prefixes that ends before a
    ``-``, ``_`` or ``.`` (EGTEA names a clip ``<session>-<start>-<end>-...``, the release ``<video>.mp4``)."""
    names: set[str] = set()
    for word in set(_TOKEN.findall(text)):
        names.add(word)
        for i, ch in enumerate(word):
            if ch in "-_.":
                names.add(word[:i])
    return names


def _attach_shared(recordings: dict[str, Recording], shared: list[SourceFile]) -> None:
    """Give each shared file to the recordings whose id it mentions (one read and one word scan per file, so two
    thousand sessions against a large annotation file cost a set look-up each)."""
    for sf in shared:
        try:
            with open(sf.path, "rb") as fh:
                text = fh.read(SHARED_READ_LIMIT).decode("utf-8", errors="replace")
        except OSError:
            text = ""
        names = mentioned_names(text)
        for rid, rec in recordings.items():
            if (rid in names) if _PLAIN_ID.match(rid) else (rid in text):
                rec.files.setdefault(sf.rule.role, []).append(sf)
    # an extra file shared with annotations (EGTEA's action_idx.txt) follows them: only where annotations went
    for rec in recordings.values():
        if "annotations" not in rec.files:
            continue
        for sf in shared:
            if sf.rule.role == "extra" and sf.rule.pass_to == "annotations" and sf not in rec.files.get("extra", []):
                rec.files.setdefault("extra", []).append(sf)
