"""The documentation stands alone and matches the code.

- nothing in README.md, docs/ or src/ points outside the repository; every relative link, anchor,
  file path, `acqsynth.…` name, run-config key and command line the docs show exists or parses;
- every built-in strategy, acquisition function, selection method, config key and CLI command is
  documented, and README's tour of src/ names every module there is;
- docs/config.md is what scripts/config_reference.py writes from the config dataclasses today, and
  the format reward is the formula docs/methods.md gives.

Only text is read and modules imported: no model is loaded.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from acqsynth.acquisition import ACQUISITIONS
from acqsynth.cli import build_parser
from acqsynth.config import key_paths
from acqsynth.run.config import RunConfig
from acqsynth.selection import METHODS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "acqsynth"
OUTSIDE = ("shared/", "DESIGN.md")
"""Where the project's design notes lived before they moved into docs/: no file may point there."""
USER_FILES = re.compile(r"(^|/)(my_\w+|FILE|NAME|main)\.py$")
"""Example names of a user's own file (and the sandbox's `main.py`), not files of this repository."""


def markdown_files() -> list[Path]:
    """README.md and the hand-written docs (docs/results/ holds generated reports)."""
    return [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "results" not in p.relative_to(DOCS).parts)]


def source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@cache
def text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def code_spans(markdown: str) -> set[str]:
    """The contents of every `inline code` span."""
    return set(re.findall(r"`([^`\n]+)`", markdown))


def documents(markdown: str, name: str) -> bool:
    """Whether `name` appears as inline code, alone or followed by its parameters: `name`, `name(k=8)`."""
    return any(span == name or span.startswith(f"{name}(") for span in code_spans(markdown))


def section(markdown: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", markdown, re.MULTILINE)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(markdown, match.end())
    return markdown[match.end() : end.start() if end else len(markdown)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    heading = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    body = re.sub(r"^```.*?^```", "", text(path), flags=re.MULTILINE | re.DOTALL)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", body, re.MULTILINE)}


@cache
def load_script(name: str) -> ModuleType:
    """A module of scripts/ (not a package), imported once."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def command_lines(markdown: str) -> list[str]:
    """Every `acqsynth ...` command line of the shell blocks, continuation lines joined; lines with a
    placeholder (`...`, `…`) or a shell variable are left out."""
    lines = []
    for block in re.findall(r"^```(?:bash|sh|console)?\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("acqsynth ") and not any(mark in line for mark in ("...", "…", "$")):
                lines.append(line)
    return lines


def resolves(dotted: str) -> bool:
    """Whether `acqsynth.x.y` is a module, or a module's attribute (`acqsynth.sandbox.run_python`)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def strategy_names() -> list[str]:
    """Every built-in strategy: the strategies package's dict, or the run config's tuple before it."""
    for module in ("acqsynth.strategies", "acqsynth.run.config"):
        names = getattr(importlib.import_module(module), "STRATEGIES", None)
        if names is not None:
            return list(names)
    raise AssertionError("no STRATEGIES in acqsynth.strategies or acqsynth.run.config")


def command_names() -> list[str]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert actions, "acqsynth has no subcommands"
    return [name for a in actions for name in a.choices]


# ------------------------------------------------------------------ the repository stands alone
@pytest.mark.parametrize("path", [*markdown_files(), *source_files()], ids=rel)
def test_nothing_points_outside_the_repository(path: Path) -> None:
    found = [needle for needle in OUTSIDE if needle in text(path)]
    assert not found, f"{rel(path)} mentions {found}: the repository must stand alone (put it in docs/)"


@pytest.mark.parametrize("path", markdown_files(), ids=rel)
def test_every_relative_link_resolves_inside_the_repository(path: Path) -> None:
    body = re.sub(r"^```.*?^```", "", text(path), flags=re.MULTILINE | re.DOTALL)
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", body):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if file.startswith("/") or not resolved.is_relative_to(ROOT):
            bad.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            bad.append(f"{target} (no heading with that anchor)")
    assert not bad, f"{rel(path)}: broken links: {bad}"


def named_file_exists(name: str) -> bool:
    """Whether a file path as the docs write it (`strategies/active.py`, `hygiene.py`, `tests/...`) exists."""
    if USER_FILES.search(name):
        return True
    if "/" in name:
        return any((base / name).is_file() for base in (ROOT, ROOT / "src", SRC))
    return any(p.name == name for top in ("src", "tests", "scripts", "bench", "experiments")
               for p in (ROOT / top).rglob(name))


@pytest.mark.parametrize("path", markdown_files(), ids=rel)
def test_every_python_file_the_docs_name_exists(path: Path) -> None:
    names = re.findall(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.py)\b", text(path))
    missing = sorted({n for n in names if not named_file_exists(n)})
    assert not missing, f"{rel(path)} names files that do not exist: {missing}"


@pytest.mark.parametrize("path", markdown_files(), ids=rel)
def test_every_acqsynth_name_the_docs_use_exists(path: Path) -> None:
    names = {span for span in code_spans(text(path)) if re.fullmatch(r"acqsynth(\.\w+)+", span)}
    for module, imported in re.findall(r"^\s*from (acqsynth[\w.]*) import ([\w, ]+)$", text(path), re.MULTILINE):
        names |= {f"{module}.{name.strip()}" for name in imported.split(",") if name.strip()}
    missing = sorted(n for n in names if not resolves(n))
    assert not missing, f"{rel(path)} uses names acqsynth does not have: {missing}"


def test_every_doc_the_source_names_exists() -> None:
    missing = sorted({f"{rel(p)}: {d}" for p in source_files() if p.suffix == ".py"
                      for d in re.findall(r"docs/[\w./-]*\w\.md", text(p)) if not (ROOT / d).is_file()})
    assert not missing, f"the source names docs that do not exist: {missing}"


def test_readme_links_every_doc() -> None:
    readme = text(ROOT / "README.md")
    missing = [rel(p) for p in sorted(DOCS.glob("*.md")) if p.name not in readme]
    assert not missing, f"README.md does not mention {missing}"


# ------------------------------------------------------------------ the docs and the code agree
@pytest.mark.parametrize("name", strategy_names())
def test_every_strategy_is_documented(name: str) -> None:
    assert documents(text(DOCS / "strategies.md"), name), f"strategy {name!r} is missing from docs/strategies.md"


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_every_acquisition_is_documented(name: str) -> None:
    assert documents(text(DOCS / "acquisition.md"), name), f"acquisition {name!r} is missing from docs/acquisition.md"


@pytest.mark.parametrize("name", METHODS)
def test_every_selection_method_is_documented(name: str) -> None:
    selection = section(text(DOCS / "acquisition.md"), "Selection")
    assert documents(selection, name), f"selection method {name!r} is missing from docs/acquisition.md#selection"


FORMAT_CASES = {
    "<question>q</question><reasoning>r</reasoning><answer>a</answer>": 0.75,
    "<question>q</question><reasoning>r</reasoning><answer>a</answer>\n  ": 0.75,  # whitespace is free
    "<question>q</question><reasoning>r</reasoning><answer>a</answer>abc": 0.747,
    "<question>q</question><reasoning>r</reasoning><answer>a</answer><answer>b</answer>": 0.5,
    "<question>q": 0.125,  # no closing tag: no tail penalty
    "<question>q</question>" + "x" * 1000: 0.0,  # never below 0
}
"""A completion -> its format reward F, worked out by hand from the formula docs/methods.md gives."""


def test_the_format_reward_is_the_one_methods_md_documents() -> None:
    defined = [p for p in source_files() if p.suffix == ".py" and re.search(r"^def format_reward\(", text(p), re.MULTILINE)]
    assert len(defined) == 1, f"format_reward is defined in {[rel(p) for p in defined]}"
    where = defined[0].relative_to(SRC)
    methods = text(DOCS / "methods.md")
    assert f"(`format_reward` in `{where.as_posix()}`)" in methods, f"docs/methods.md must say format_reward is in {where}"
    assert "F = min(0.75, max(0, 0.125 · n₁ − 0.001 · |strip(tail)|))" in methods
    module = importlib.import_module(".".join(["acqsynth", *where.with_suffix("").parts]))
    for completion, expected in FORMAT_CASES.items():
        assert module.format_reward(completion) == pytest.approx(expected), completion[:80]


def config_reference() -> ModuleType:
    return load_script("config_reference")


def test_config_reference_is_current() -> None:
    assert text(DOCS / "config.md") == config_reference().render(), (
        "docs/config.md is out of date: run `.venv/bin/python scripts/config_reference.py`"
    )


def test_every_config_key_is_documented() -> None:
    reference = text(DOCS / "config.md")
    for cmd in config_reference().COMMANDS:
        body = section(reference, f"`{cmd.command}`")
        missing = [k for k in key_paths(cmd.config) if f"`{k}`" not in body]
        assert not missing, f"{cmd.command}: keys missing from docs/config.md: {missing}"
    assert any(cmd.config is RunConfig for cmd in config_reference().COMMANDS)


@pytest.mark.parametrize("path", markdown_files(), ids=rel)
def test_every_dotted_run_key_the_docs_name_exists(path: Path) -> None:
    """`budget.samples`, `train.method=full`: a dotted key the docs name is a key of RunConfig."""
    keys = set(key_paths(RunConfig))
    sections = "|".join(sorted({k.split(".")[0] for k in keys if "." in k}))
    words = code_spans(text(path)) | {w for line in command_lines(text(path)) for w in shlex.split(line, comments=True)}
    named = {m.group(1) for w in words if (m := re.fullmatch(rf"((?:{sections})(?:\.\w+)+)(?:=.*)?", w.strip("'\"")))}
    files = {n for n in named if n.rsplit(".", 1)[1] in ("py", "md", "json", "jsonl", "yaml", "csv", "parquet", "png")}
    missing = sorted(n for n in named - files - keys if not resolves(f"acqsynth.{n}"))  # selection.kmeans_pp
    assert not missing, f"{rel(path)} names run-config keys that do not exist: {missing}"


@pytest.mark.parametrize("name", command_names())
def test_every_command_is_in_the_readme(name: str) -> None:
    assert re.search(rf"\bacqsynth {re.escape(name)}\b", text(ROOT / "README.md")), f"`acqsynth {name}` is not in README.md"


@pytest.mark.parametrize("path", markdown_files(), ids=rel)
def test_every_command_line_in_the_docs_parses(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = []
    for line in command_lines(text(path)):
        argv = [a.strip("[]") for a in shlex.split(line, comments=True) if a not in ("[", "]")][1:]
        try:  # as `acqsynth.cli.main` parses: key=value overrides may follow the options
            args, extra = build_parser().parse_known_args(argv)
        except SystemExit:
            bad.append(f"{line}: {capsys.readouterr().err.strip().splitlines()[-1]}")
            continue
        if any("=" not in e or e.startswith("-") or not hasattr(args, "items") for e in extra):
            bad.append(f"{line}: unrecognised {extra}")
    assert not bad, f"{rel(path)} shows commands acqsynth does not accept: {bad}"


def readme_tour() -> dict[str, str]:
    """README's "Where things live" block: each entry under src/acqsynth/ -> its description."""
    block = re.search(r"```\n(src/acqsynth/\n.*?)```", section(text(ROOT / "README.md"), "Where things live"), re.DOTALL)
    assert block, "README.md's 'Where things live' has no src/acqsynth/ block"
    entries: dict[str, str] = {}
    last = None
    for line in block.group(1).splitlines()[1:]:
        if not line.startswith(" "):
            break  # the next top-level folder (tests/, docs/, ...)
        entry = re.match(r"  (\S+)(?:\s+(.*))?$", line)
        if entry and not line.startswith("   "):
            last = entry.group(1)
            entries[last] = entry.group(2) or ""
        elif last is not None:
            entries[last] += " " + line.strip()
    return entries


def test_readme_tour_names_every_module() -> None:
    tour = readme_tour()
    top = sorted(p.name + ("/" if p.is_dir() else "") for p in SRC.iterdir()
                 if p.name not in ("__init__.py", "__pycache__", "py.typed") and (p.is_dir() or p.suffix == ".py"))
    assert sorted(tour) == top, f"README's tour lists {sorted(tour)}, src/acqsynth/ holds {top}"
    for entry, description in tour.items():
        if not entry.endswith("/"):
            continue
        package = SRC / entry
        named = set(re.findall(r"[\w-]+\.(?:py|yaml)\b", description))
        files = {p.name for p in package.iterdir() if p.suffix in (".py", ".yaml") and p.name not in ("__init__.py", "__main__.py")}
        assert named <= files, f"README's tour names {sorted(named - files)} in {entry}, which does not hold them"
        assert files <= named, f"README's tour of {entry} does not name {sorted(files - named)}"
