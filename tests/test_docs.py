"""The documentation's references resolve: links, anchors, section citations of docs/tasks.md, and the hooks.

Anchors follow GitHub's rule: the heading text lower-cased, everything but letters, digits, spaces, hyphens and
underscores dropped, spaces turned into hyphens; a repeated slug gets -1, -2, ... Fenced code blocks are not
headings and hold no links.
"""
from __future__ import annotations

import inspect
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
USER_DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *DOCS]
SKIP_DIRS = {"build", "dist", "node_modules", "__pycache__", "site-packages"}

#: Spec files cited by name in code, and the doc of the repository that now holds what they described.
MAPPED_SPECS = {"formats.md": "docs/gaze.md"}
#: Spec files that no doc of the repository stands for: citing them is a dangling reference.
UNMAPPED_SPECS = ("contract.md",)

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
_DOC_REF = re.compile(r"(?<![\w/.-])docs/([\w.-]+\.md)(#[\w-]+)?")
_DOC_QUOTED = re.compile(r"(?<![\w/.-])(docs/[\w.-]+\.md|formats\.md),?\s+\"([^\"\n]{2,80}(?:\n[^\"\n]{0,80})?)\"")
_TASKS_CITE = re.compile(r"(?<![\w/.-])tasks\.md(?: section)? ?(\d+(?:\.\d+)*)((?:(?:,\s*| and )\d+(?:\.\d+)*)*)")


def _repo_files(*suffixes: str) -> list[Path]:
    out = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part.startswith(".") or part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.is_file() and path.suffix in suffixes and "fixtures" not in rel.parts:
            out.append(path)
    return sorted(out)


def _strip_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@lru_cache(maxsize=None)
def headings(path: Path) -> tuple[tuple[str, ...], frozenset[str]]:
    """The heading texts of a markdown file (outside code blocks) and their GitHub anchors."""
    texts, anchors, seen = [], set(), {}
    for m in _HEADING.finditer(_strip_code_blocks(path.read_text(encoding="utf-8"))):
        text = m.group(2)
        texts.append(text)
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        anchors.add(base if n == 0 else f"{base}-{n}")
    return tuple(texts), frozenset(anchors)


def _plain_heading(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("`", "")).strip().lower()


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_slug_rule():
    assert slug("2.5 OI-E: object identification, easy") == "25-oi-e-object-identification-easy"
    assert slug("Dwell episodes (`build_episodes`, the `episodes` table)") == "dwell-episodes-build_episodes-the-episodes-table"


@pytest.mark.parametrize("doc", USER_DOCS, ids=_rel)
def test_every_relative_link_resolves(doc):
    """(a) and (d): every relative link points at a file of the repository, and its anchor at a heading there."""
    text = _INLINE_CODE.sub("", _strip_code_blocks(doc.read_text(encoding="utf-8")))
    bad = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if ROOT != dest and ROOT not in dest.parents:
            bad.append(f"{target}: outside the repository")
            continue
        if not dest.exists():
            bad.append(f"{target}: no such file")
            continue
        if anchor and dest.suffix == ".md" and anchor not in headings(dest)[1]:
            bad.append(f"{target}: no heading with anchor #{anchor} in {_rel(dest)}")
    assert not bad, f"{_rel(doc)}: " + "; ".join(bad)


@pytest.mark.parametrize("doc", USER_DOCS, ids=_rel)
def test_no_doc_points_outside_the_repository(doc):
    """(d): no path into the development machine or the unpublished spec folder."""
    text = doc.read_text(encoding="utf-8")
    for needle in ("../shared", "shared/spec", "/work/"):
        lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
        assert not lines, f"{_rel(doc)} mentions {needle!r} on line(s) {lines}"


def test_doc_references_in_the_repository_resolve():
    """(b): every `docs/<name>.md#anchor` in .py/.md/.yaml/.j2 files names an existing doc and heading; a
    `docs/<name>.md, "Heading"` names a heading that starts with those words."""
    bad = []
    for path in _repo_files(".py", ".md", ".yaml", ".j2"):
        text = path.read_text(encoding="utf-8")
        for name, anchor in _DOC_REF.findall(text):
            doc = ROOT / "docs" / name
            if not doc.is_file():
                bad.append(f"{_rel(path)}: docs/{name} does not exist")
            elif anchor and anchor[1:] not in headings(doc)[1]:
                bad.append(f"{_rel(path)}: docs/{name}{anchor}: no such heading")
        for cited, title in _DOC_QUOTED.findall(text):
            doc = ROOT / MAPPED_SPECS.get(cited, cited)
            title = _plain_heading(re.sub(r"\n\s*#?", " ", title))
            if not doc.is_file():
                bad.append(f"{_rel(path)}: {cited} does not exist")
            elif not any(_plain_heading(h).startswith(title) for h in headings(doc)[0]):
                bad.append(f"{_rel(path)}: {cited}, {title!r}: no heading of {_rel(doc)} starts so")
    assert not bad, "\n".join(bad)


def _tasks_sections() -> tuple[str, ...]:
    return headings(ROOT / "docs" / "tasks.md")[0]


def _has_section(number: str) -> bool:
    pattern = re.compile(rf"{re.escape(number)}\.?\s")
    return any(pattern.match(h) for h in _tasks_sections())


def test_every_tasks_md_citation_resolves():
    """(c): every "tasks.md N.M" / "tasks.md section N" (and lists such as "tasks.md 2.9, 2.10") in .py, .yaml, .j2
    and .md files names a heading of docs/tasks.md that starts with that number."""
    cited: dict[str, list[str]] = {}
    for path in _repo_files(".py", ".md", ".yaml", ".j2"):
        for first, more in _TASKS_CITE.findall(path.read_text(encoding="utf-8")):
            for number in [first, *re.findall(r"\d+(?:\.\d+)*", more)]:
                cited.setdefault(number.rstrip("."), []).append(_rel(path))
    assert "2.5" in cited and "1.4" in cited, "the citation scan found nothing: is the pattern right?"
    missing = {n: sorted(set(files)) for n, files in cited.items() if not _has_section(n)}
    assert not missing, f"sections cited but not in docs/tasks.md: {missing}"


def test_sections_are_numbered_as_cited():
    """docs/tasks.md keeps the numbering the code cites: 0, 0.1, 1.1-1.6, 2.1-2.10, 3.1-3.6, 4.1-4.3."""
    wanted = ["0", "0.1", "1", *(f"1.{i}" for i in range(1, 7)), "2", *(f"2.{i}" for i in range(1, 11)),
              "3", *(f"3.{i}" for i in range(1, 7)), "4", *(f"4.{i}" for i in range(1, 4))]
    assert [n for n in wanted if not _has_section(n)] == []


def test_spec_files_cited_by_name_have_a_home():
    """formats.md citations point at the doc that holds that content; contract.md has none, so is not cited."""
    bad = []
    for path in _repo_files(".py", ".md", ".yaml", ".j2"):
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        for name in UNMAPPED_SPECS:
            if re.search(rf"(?<![\w/.-]){re.escape(name)}", text):
                bad.append(f"{_rel(path)} cites {name}, which is not part of the repository")
    for target in MAPPED_SPECS.values():
        assert (ROOT / target).is_file()
    assert not bad, "\n".join(bad)


def _hookspecs():
    from streamgaze.plugins import hookspecs

    found = [(name, fn) for name, fn in vars(hookspecs).items()
             if inspect.isfunction(fn) and hasattr(fn, "streamgaze_spec")]
    assert found, "no hookspecs found"
    return found


def _sections(path: Path) -> dict[str, str]:
    """Heading text -> the text up to the next heading (code blocks removed)."""
    text = _strip_code_blocks(path.read_text(encoding="utf-8"))
    marks = list(_HEADING.finditer(text))
    return {m.group(2): text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
            for i, m in enumerate(marks)}


@pytest.mark.parametrize("name", [n for n, _ in _hookspecs()])
def test_every_hookspec_is_documented_with_its_signature(name):
    """(e): each hookspec has a heading in docs/plugins.md that names it, and its section starts with its signature:
    the name and the parameter list exactly as `inspect.signature` renders it (a line such as
    ``streamgaze_gaze_loaders() -> dict[str, Loader]``), so a new hookspec, or a changed signature, without docs fails."""
    fn = dict(_hookspecs())[name]
    expected = f"{name}{inspect.signature(fn)}"
    sections = {h.replace("`", "").strip(): body for h, body in _sections(ROOT / "docs" / "plugins.md").items()}
    found = [h for h in sections if re.match(rf"{re.escape(name)}\b", h)]
    assert found, f"docs/plugins.md has no heading for {name}"
    first_line = sections[found[0]].strip().splitlines()[0].replace("`", "") if sections[found[0]].strip() else ""
    assert first_line.startswith(expected), f"the section {found[0]!r} must start with its signature {expected!r}"


def test_the_tutorial_is_linked():
    for doc in ("README.md", "CONTRIBUTING.md", "docs/tasks.md"):
        assert "writing-a-task.md" in (ROOT / doc).read_text(encoding="utf-8"), doc
