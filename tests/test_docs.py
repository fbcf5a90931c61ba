"""The documentation builds without a warning, and what it quotes is what the code does.

- `mkdocs build --strict` (any warning, broken link or broken anchor fails), with the schema
  page's table generated from bench/results.py;
- the schema page lists exactly the schema's columns, each with its meaning;
- every `bench <command> --flag` written in README.md or docs/ is an option of that command,
  every bare `--flag` is an option of some command, and every default the docs quote for a
  flag is the one its `--help` states;
- every `--help` that states a numeric default states the parser's real one;
- the versions the docs quote from locks/ are the locks' pins.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import build_parser
from bench.measure import TIMING_FIELDS
from bench.results import COLUMN_DOCS, COLUMNS, SCHEMA, TIMING_FIELD_DOCS, TIMING_PREFIX_DOCS, column_doc, timing_column
from bench.schema_doc import markdown as schema_markdown

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
# Flags of other tools that the docs quote on their own, with the tool they belong to.
OTHER_TOOLS_FLAGS = {"--benchmark-compare-fail": "pytest-benchmark", "--extra-index-url": "pip"}
# `make <target> ARGS="..."` passes ARGS to this bench command.
MAKE_ARGS = {"bench": "run", "gate": "run", "baseline": "run", "doctor": "doctor", "env": "env"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


COMMANDS = _commands()


def _options(command: str) -> dict[str, argparse.Action]:
    return {flag: action for action in COMMANDS[command]._actions for flag in action.option_strings}


# -- the site -------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (pip install -e '.[docs]')")
def test_site_builds_strict_with_no_warning_and_the_generated_schema(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner is not a build warning
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    assert "WARNING" not in log, log
    schema_page = (tmp_path / "site" / "schema.html").read_text()
    missing = [c for c in COLUMNS if f"<code>{c}</code>" not in schema_page]
    assert not missing, f"the built schema page lacks {missing}"


def test_schema_page_lists_exactly_the_schema_columns_in_file_order():
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", schema_markdown(), re.M)
    assert [name for name, _ in rows] == list(COLUMNS)


def test_every_column_has_a_meaning_and_every_meaning_a_column():
    for name in COLUMNS:
        assert column_doc(name).strip(), name
    assert not set(COLUMN_DOCS) - set(COLUMNS), "COLUMN_DOCS describes columns the schema does not have"
    assert set(TIMING_FIELD_DOCS) == {f.suffix for f in TIMING_FIELDS}
    used = {timing_column(n)[0] for n in COLUMNS if timing_column(n)}
    assert used == set(TIMING_PREFIX_DOCS), "a timing prefix without columns, or columns without a prefix doc"
    assert all(timing_column(n) or n in COLUMN_DOCS for n in SCHEMA.names)


# -- flags and defaults quoted in the docs ------------------------------------------------------
def _code_segments(text: str) -> list[str]:
    """The lines of fenced code blocks, and inline code spans of the prose."""
    segments: list[str] = []
    for i, part in enumerate(re.split(r"^```[^\n]*\n", text, flags=re.M)):
        if i % 2:  # inside a fence
            segments += part.splitlines()
        else:
            segments += re.findall(r"`([^`\n]+)`", part)
    return segments


def _bench_calls(segment: str) -> list[tuple[str, str]]:
    """(command, the rest of its command line) for each `bench <command>` in a code segment."""
    calls = []
    segment = re.split(r"\s#\s", segment)[0].replace("\\|", " ")  # a shell comment is prose; `a\|b` is a table's "a or b"
    for m in re.finditer(r"(?<![\w.-])(?<!make )(?:python -m )?bench\s+([a-z][a-z-]*)\b(.*)", segment):
        rest = re.split(r"\s#|\||;|&&", m.group(2))[0].strip()
        calls.append((m.group(1), rest))
    for m in re.finditer(r"\bmake\s+([a-z]+)\b[^#\n]*?\bARGS=\"([^\"]*)\"", segment):
        if m.group(1) in MAKE_ARGS:
            calls.append((MAKE_ARGS[m.group(1)], m.group(2)))
    calls += [("compare", m.group(1)) for m in re.finditer(r"\bGATE_ARGS=\"([^\"]*)\"", segment)]
    return calls


def _flags(text: str) -> list[str]:
    return re.findall(r"(?<![\w\-./<])(--?[A-Za-z][\w-]*)", text)


def test_flags_written_after_a_bench_command_are_options_of_that_command():
    problems = []
    for page in PAGES:
        for segment in _code_segments(page.read_text()):
            for command, rest in _bench_calls(segment):
                if command not in COMMANDS:
                    problems.append(f"{page.relative_to(ROOT)}: `bench {command}` is not a command ({', '.join(COMMANDS)})")
                    continue
                options = _options(command)
                problems += [f"{page.relative_to(ROOT)}: `bench {command}` has no {flag}: {segment.strip()}"
                             for flag in _flags(rest) if flag not in options]
    assert not problems, "\n".join(problems)


def test_bare_flags_in_the_docs_are_options_of_some_command():
    known = {flag for command in COMMANDS for flag in _options(command)} | set(OTHER_TOOLS_FLAGS)
    problems = []
    for page in PAGES:
        for segment in _code_segments(page.read_text()):
            m = re.match(r"(--[A-Za-z][\w-]*)(?:[ =]|$)", segment)
            if m and m.group(1) not in known:
                problems.append(f"{page.relative_to(ROOT)}: `{segment}`: no bench command has {m.group(1)}")
    assert not problems, "\n".join(problems)


def _as_number(text: str) -> float | None:
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return None


def _same(quoted: str, value: object) -> bool:
    """A default as the docs write it ("300", "5%", "results/", "both") against a value."""
    number = _as_number(quoted)
    if number is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return abs(number - value) <= 1e-9 * max(1.0, abs(value))
    return quoted.rstrip("/") == str(value).rstrip("/")


def _help_defaults(action: argparse.Action) -> list[str]:
    """The words after "default" in an option's help: what --help tells a user."""
    clause = re.search(r"default:? ([^)]*)", action.help or "")
    return re.findall(r"[\w.%/]+", clause.group(1)) if clause else []


def _quoted_defaults(text: str) -> list[tuple[str, str]]:
    """(flag, value) for "`--flag …` (default V", "V (`--flag`)" and "`--flag V …` by default" in the prose."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S).replace("\n", " ")
    found = [(m.group(1), m.group(2)) for m in re.finditer(
        r"`(?:[^`]*\s)?(--(?!help\b)[\w-]+)(?:[ =][^`-][^`]*)?`(?:(?!`--)[^.]){0,60}?\bdefaults?:?\s+(?:is\s+)?"
        r"([0-9][\w.%]*|[a-z][\w/.-]*[\w/])", prose)]
    found += [(m.group(2), m.group(1)) for m in re.finditer(r"(\d[\d.]*%?) \(`(--[\w-]+)`\)", prose)]
    for m in re.finditer(r"`((?:--[\w-]+ [^`\s-][^`\s]*\s*)+)`\s+by default", prose):
        found += re.findall(r"(--[\w-]+) ([^\s]+)", m.group(1))
    return found


def test_defaults_quoted_in_the_docs_are_the_ones_help_states():
    problems = []
    for page in PAGES:
        for flag, quoted in _quoted_defaults(page.read_text()):
            actions = [(c, _options(c)[flag]) for c in COMMANDS if flag in _options(c)]
            if not actions:
                continue  # an unknown flag is the test above's finding
            if not any(_same(quoted, a.default) or any(_same(quoted, word) for word in _help_defaults(a)) for _, a in actions):
                stated = "; ".join(f"bench {c}: {a.default!r} ({(a.help or '').strip()[:80]})" for c, a in actions)
                problems.append(f"{page.relative_to(ROOT)}: {flag} default {quoted!r}, but {stated}")
    assert not problems, "\n".join(problems)


def test_help_states_the_parsers_real_numeric_defaults():
    problems = []
    for command in COMMANDS:
        for action in COMMANDS[command]._actions:
            value = action.default
            if not action.option_strings or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            numbers = [_as_number(w) for w in _help_defaults(action)]
            numbers = [n for n in numbers if n is not None]
            if numbers and not any(_same(str(n), value) for n in numbers):
                problems.append(f"bench {command} {action.option_strings[-1]}: --help says default {numbers}, the parser uses {value}")
    assert not problems, "\n".join(problems)


def test_the_checks_catch_drift():
    """The two checks above against a made-up page and option, so they cannot pass vacuously."""
    assert _quoted_defaults("Sampling ends at `--budget` (default 1.0 s), within ±3% (`--precision`), "
                            "or `--threads 1 --budget 0.3` by default.") == [
        ("--budget", "1.0"), ("--precision", "3%"), ("--threads", "1"), ("--budget", "0.3")]
    assert not any(_same("3%", w) for w in [_options("run")["--precision"].default])
    run = _options("run")
    assert not _same("1.0", run["--budget"].default) and not any(_same("1.0", w) for w in _help_defaults(run["--budget"]))
    assert any(_same("0.3", w) for w in _help_defaults(_options("ab")["--budget"]))
    assert _bench_calls(".venv/bin/bench run -f mlx --no-such-flag  # make bench does --ignored") == [("run", "-f mlx --no-such-flag")]
    assert "--no-such-flag" not in run
    assert "--bogus" in _flags(_bench_calls("bench run [--suite quick\\|full] [--bogus]")[0][1])  # a table's escaped "or"


# -- versions quoted from the locks --------------------------------------------------------------
def _lock_pins(name: str) -> dict[str, str]:
    text = (ROOT / "locks" / f"{name}.txt").read_text()
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", text, re.M)}


def test_versions_in_the_resolved_versions_table_are_the_locks_pins():
    text = (ROOT / "docs" / "environments.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("|") and re.search(r"`((?:macos|linux)-[\w-]+)`", line)]
    assert len(rows) >= 6, "the resolved-versions table is gone or reshaped: update this test with it"
    problems = []
    for row in rows:
        lock = re.search(r"`((?:macos|linux)-[\w-]+)`", row).group(1)
        pins = _lock_pins(lock)
        cells = [c.strip() for c in row.strip("|").split("|")]
        pairs = re.findall(r"([A-Za-z][\w./-]*) (\d+(?:\.\d+)+)", cells[1] + ", " + cells[3])
        pairs += [("numpy", cells[2])] if re.fullmatch(r"\d+(?:\.\d+)+", cells[2]) else []
        for names, version in pairs:
            for name in names.split("/"):
                have = pins.get(name.lower())
                if have is None or have.split("+")[0] != version:
                    problems.append(f"{lock}: docs say {name} {version}, the lock pins {have}")
    assert not problems, "\n".join(problems)


# -- the front door's links ----------------------------------------------------------------------
def _slug(heading: str) -> str:
    """A heading's anchor as GitHub and MkDocs' toc both make it for plain headings."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", text))


def test_readme_links_point_at_files_and_headings_that_exist():
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = ROOT / path
        if not file.exists():
            problems.append(f"README.md links {target}: no such file")
        elif anchor and anchor not in {_slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}:
            problems.append(f"README.md links {target}: {path} has no heading with that anchor")
    assert not problems, "\n".join(problems)
    assert _slug("What `make bench` does") == "what-make-bench-does"
