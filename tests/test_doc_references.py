"""Every file, module, function and link the docs and the code's docstrings name exists,
so references cannot go stale when code moves: README.md and docs/*.md (paths and
dotted names in backticks, Markdown links and their #anchors), and the docstrings and
comments of bnexp/, benchmarks/ and scripts/ (paths, `bnexp.x.y` names, `file.py`).

Checked without importing anything: a dotted name is a module file, or a name that
module defines or imports at its top level (read with ast)."""

import ast
import re
import tokenize
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = sorted([*(ROOT / "bnexp").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
               *(ROOT / "scripts").glob("*")])
TOP = ("bnexp", "tests", "scripts", "benchmarks", "configs", "docs", "examples", ".ci")

# a path in the repository: a top folder, then path characters (globs allowed)
_TOPS = "|".join(re.escape(t) for t in TOP)
PATH = re.compile(r"(?<![\w./~-])((?:" + _TOPS + r")/[\w./*-]*[\w*])(?:(?:::|:)(\w+))?")
DOTTED = re.compile(r"(?<![\w./])(bnexp(?:\.\w+)+)")
# a bare file name of the code (compiled.py, runs/reader.py), optionally ::function
PY_FILE = re.compile(r"(?<![\w./~*-])((?:\w+/)*[\w*]+\.py)(?:(?:::|:)(\w+))?\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# files named that are not this repository's (Keras' test file the suite runs)
OUTSIDE = {"batch_normalization_test.py"}


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*]|\[|\]\([^)]*\)", "", heading.strip().lower())  # GitHub keeps _
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(page: Path) -> set[str]:
    """The #anchors of a Markdown page's headings (outside code blocks)."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


@cache
def top_level_names(path: Path) -> set[str]:
    """What a module defines or imports at its top level, and its classes' members."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    if path.name == "__init__.py":  # names a package hands on lazily: strings in a set
        names |= set(re.findall(r'"(\w+)"', path.read_text()))
    return names


def module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def dotted_exists(name: str) -> bool:
    """bnexp.a.b[.c...]: a module, or names defined in the longest module prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        path = module_file(parts[:cut])
        if path is not None:
            rest = parts[cut:]
            return not rest or rest[0] in top_level_names(path)
    return False


def path_exists(text: str, function: str | None) -> bool:
    matches = list(ROOT.glob(text.rstrip("/"))) if "*" in text else [ROOT / text.rstrip("/")]
    if not any(m.exists() for m in matches):
        return False
    if function and text.endswith(".py"):
        return function in top_level_names(ROOT / text)
    return True


@cache
def code_files_named(relative: str) -> list[Path]:
    """Files of the repository whose path ends with `relative` (compiled.py, runs/reader.py)."""
    return [p for p in [*ROOT.glob("bnexp/**/*.py"), *ROOT.glob("tests/*.py"),
                        *ROOT.glob("benchmarks/*.py")]
            if p.as_posix().endswith("/" + relative)]


def bare_file_exists(relative: str, function: str | None) -> bool:
    files = [f for pattern in [relative] for f in ROOT.glob("**/" + pattern)
             if "/." not in f.as_posix()] if "*" in relative else code_files_named(relative)
    if not files:
        return False
    return not function or any(function in top_level_names(f) for f in files)


def placeholder(path: str) -> bool:
    """A path that stands for any (runs/NAME, configs/x.yaml)."""
    return any(part.isupper() or part in ("x.yaml", "X") for part in path.split("/"))


def references(text: str, strict: bool = True) -> list[tuple[str, bool]]:
    """(reference, exists) for each path, dotted name and .py file `text` names. Not
    strict (prose of the code): a path without a file extension (`bnexp/fit`, a ratio)
    is not taken for a reference."""
    found = []
    for m in PATH.finditer(text):
        if placeholder(m.group(1)) or (strict is False and "." not in m.group(1)):
            continue
        found.append((m.group(0), path_exists(m.group(1), m.group(2))))
    for m in DOTTED.finditer(text):
        name = m.group(1).rstrip(".")
        if "__mutmut_" in name:  # a mutant's name (docs/mutation-survivors.md), not code
            continue
        found.append((name, dotted_exists(name)))
    for m in PY_FILE.finditer(text):
        if not m.group(1).startswith(TOP) and m.group(1) not in OUTSIDE:
            found.append((m.group(0), bare_file_exists(m.group(1), m.group(2))))
    return found


def backticked(page: Path) -> str:
    """The code spans and code blocks of a Markdown page, one per line."""
    text = page.read_text()
    blocks = re.findall(r"```.*?\n(.*?)```", text, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(blocks + spans)


def docstrings_and_comments(path: Path) -> str:
    """A Python file's string literals and comments (a script's whole text)."""
    if path.suffix != ".py":
        return path.read_text()
    parts = []
    with open(path, "rb") as f:
        for token in tokenize.tokenize(f.readline):
            if token.type in (tokenize.STRING, tokenize.COMMENT):
                parts.append(token.string)
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_and_name_a_page_gives_exists(page):
    stale = sorted({ref for ref, ok in references(backticked(page)) if not ok})
    assert not stale, f"{page.name} names what does not exist: {stale}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_of_a_page_reaches_a_file_and_its_anchor(page):
    broken = []
    for target in LINK.findall(re.sub(r"```.*?```", "", page.read_text(), flags=re.S)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists() or anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{page.name}: links to nothing: {broken}"


def test_every_path_and_name_the_code_gives_exists():
    stale = sorted({f"{path.relative_to(ROOT)}: {ref}" for path in CODE
                    for ref, ok in references(docstrings_and_comments(path), strict=False)
                    if not ok})
    assert not stale, "docstrings and comments name what does not exist:\n" + "\n".join(stale)


@pytest.mark.parametrize("text, exists", [
    ("`bnexp/training/steps.py`", True), ("`bnexp/xla.py`", False),
    ("bnexp.training.stop", True), ("bnexp.stop", False),
    ("`analysis/doctor.py`", False), ("`compiled.py`", True),
    ("bnexp.training.loop.fit", True), ("bnexp.training.loop.no_such_function", False),
    ("`tests/test_train.py::test_same_seed_same_metrics`", True),
    ("`configs/studies/*/*.yaml`", True), ("`configs/nothing/*.yaml`", False),
])
def test_the_check_itself_tells_a_stale_reference_from_a_live_one(text, exists):
    found = references(text)
    assert found and all(ok == exists for _, ok in found), found
