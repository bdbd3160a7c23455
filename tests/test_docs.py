"""The documentation cannot rot: the code blocks of docs/**/*.md run, and the pages docs/hooks.py
generates at build time (the algorithm pages, the CLI reference, the benchmarks page) are built.

Each page runs in a fresh directory, its blocks in order, its Python blocks sharing one namespace:
- ```python: executed as written (keep their budgets tiny: a few thousand steps);
- ```bash / ```console: every command must be an `ascent ...` command (one per line; `#` comments,
  `\\` continuations and `&&` allowed; in console blocks the lines that start with `$ `), run through
  `ascent.cli.main`, which must return 0. Budgets shrink so that a page runs in seconds: `train`
  (and each trial of `tune`) gets at most STEPS env steps (an algorithm still completes its first
  iteration) and every `--episodes`, `--games`, `--eval-episodes`, `--trials` is at most 2;
- a block with a title (```toml title="NAME") is written to the file NAME (a preset, a game the
  commands read), and the site shows the name above it;
- a block after `<!-- no-test -->` is not run (a long run, another tool's command: keep them few);
  its `ascent` commands are still parsed, and a `train`'s hyperparameters checked.
Other blocks (text, toml without a title) are not run.

The generators are tested alone (in a second), and the whole site is built with `mkdocs build
--strict` as `bash scripts/docs.sh` (CI) builds it: ~12 s.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))

STEPS = 500
SMALL = {"--episodes": 2, "--games": 2, "--eval-episodes": 2, "--trials": 2}
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)(.*)$")
TITLE = re.compile(r'title="([^"]+)"')
NO_TEST = "<!-- no-test -->"


@dataclass
class Block:
    language: str
    text: str
    line: int               # of the opening fence, 1-based
    skip: bool = False
    file: str | None = None


def code_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a page, each with its title and whether the line before it says no-test."""
    lines = markdown.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, language, options = opening.groups()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)
                    and not lines[j].strip().strip("`")), None)
        assert end is not None, f"unclosed code block at line {i + 1}"
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        title = TITLE.search(options)
        body = "\n".join(line[len(indent):] for line in lines[i + 1:end])
        blocks.append(Block(language.lower(), body, i + 1, skip=before == NO_TEST, file=title.group(1) if title else None))
        i = end + 1
    return blocks


def commands(block: Block) -> list[list[str]]:
    """The argument lists of the commands in a bash or console block."""
    lines = block.text.splitlines()
    if block.language == "console":  # commands after "$ ", with their continuation lines; the rest is output
        kept, continued = [], False
        for line in lines:
            if line.startswith("$ ") or continued:
                kept.append(line[2:] if line.startswith("$ ") else line)
                continued = line.rstrip().endswith("\\")
        lines = kept
    return [argv for line in _joined(lines) for argv in _split_and(shlex.split(line, comments=True))]


def _joined(lines: list[str]) -> list[str]:
    """Lines with their backslash continuations joined."""
    out, current = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
        else:
            out.append(current + line)
            current = ""
    if current:
        out.append(current)
    return [line for line in out if line.strip()]


def _split_and(words: list[str]) -> list[list[str]]:
    parts, current = [], []
    for word in words:
        if word == "&&":
            parts.append(current)
            current = []
        else:
            current.append(word)
    return [p for p in parts + [current] if p]


def shrink(argv: list[str]) -> list[str]:
    """An `ascent` command with the small budgets of this test (see the module docstring)."""
    argv = list(argv)
    for i, word in enumerate(argv[:-1]):
        if word == "--steps" and argv[0] in ("train", "tune"):
            argv[i + 1] = str(min(int(float(argv[i + 1])), STEPS))
        if word in SMALL:
            argv[i + 1] = str(min(int(argv[i + 1]), SMALL[word]))
    if argv[0] == "train":
        argv += [] if "--steps" in argv else ["--steps", str(STEPS)]
        argv += [] if "--eval-episodes" in argv else ["--eval-episodes", str(SMALL["--eval-episodes"])]
    if argv[0] in ("train", "resume") and "--no-progress" not in argv:
        argv.append("--no-progress")
    return argv


def dry_check(argv: list[str], where: str) -> None:
    """An `ascent` command of a block that does not run: its arguments parse, and a `train`'s
    algorithm, preset and hyperparameters (`--set`) are valid."""
    from ascent.cli import build_parser
    from ascent.core.config import build_config, parse_set
    from ascent.registry import get_algorithm

    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `ascent {shlex.join(argv)}` does not parse (see the usage above)")
    if args.command == "train":
        cls = get_algorithm(args.algo)
        build_config(cls.Config, args.algo.lower(), args.env, args.preset, parse_set(args.set))


def run_page(page: str) -> None:
    from ascent.cli import main

    namespace: dict = {"__name__": "__docs__"}
    for block in code_blocks((DOCS / page).read_text()):
        where = f"{page}:{block.line}"
        if block.skip:
            if block.language in ("bash", "sh", "console"):
                for argv in commands(block):
                    if argv[0] == "ascent":
                        dry_check(argv[1:], where)
            continue
        if block.file is not None:
            Path(block.file).parent.mkdir(parents=True, exist_ok=True)
            Path(block.file).write_text(block.text + "\n")
        elif block.language == "python":
            exec(compile(block.text, where, "exec"), namespace)
        elif block.language in ("bash", "sh", "console"):
            for argv in commands(block):
                assert argv[0] == "ascent", (f"{where}: {shlex.join(argv)!r} is not an ascent command; run it "
                                             "from an ascent command, or mark the block <!-- no-test -->")
                argv = shrink(argv[1:])
                try:
                    rc = main(argv)
                except SystemExit as exit:  # argparse's usage errors
                    rc = exit.code
                assert rc == 0, f"{where}: `ascent {shlex.join(argv)}` exited with {rc}"


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ascent"])
    run_page(page)


def test_block_parsing():
    page = """intro

<!-- no-test -->
```bash
bash scripts/quickstart.sh
```

```toml title="p.toml"
n_envs = 2
```

```console
$ ascent train ppo --env CartPole-v1 \\
    --steps 100000 --preset p.toml  # a comment
training ppo ...
$ ascent eval runs/x --episodes 10 && ascent plot runs/x
```
"""
    skip, file, console = code_blocks(page)
    assert skip.skip and skip.language == "bash"
    assert file.file == "p.toml" and file.text == "n_envs = 2"
    assert commands(console) == [
        ["ascent", "train", "ppo", "--env", "CartPole-v1", "--steps", "100000", "--preset", "p.toml"],
        ["ascent", "eval", "runs/x", "--episodes", "10"], ["ascent", "plot", "runs/x"]]
    assert shrink(commands(console)[0][1:]) == [
        "train", "ppo", "--env", "CartPole-v1", "--steps", str(STEPS), "--preset", "p.toml",
        "--eval-episodes", "2", "--no-progress"]


def test_blocks_that_do_not_run_are_still_checked():
    from ascent.errors import ConfigError

    dry_check(["train", "ppo", "--env", "CartPole-v1", "--set", "n_steps=64"], "here")
    with pytest.raises(ConfigError, match="unknown hyperparameter 'n_step'"):
        dry_check(["train", "ppo", "--env", "CartPole-v1", "--set", "n_step=64"], "here")
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        dry_check(["train", "ppo", "--env", "CartPole-v1", "--stepz", "10"], "here")


# ---- the generated pages -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hooks():
    sys.path.insert(0, str(DOCS))
    try:
        import hooks as module
    finally:
        sys.path.remove(str(DOCS))
    return module


def test_every_algorithm_has_a_page_with_its_hyperparameters(hooks):
    from ascent.core.config import config_help, load_presets
    from ascent.registry import ALGORITHMS

    algos = hooks.algorithms()
    assert [a.name for a in algos] == list(ALGORITHMS)
    for algo in algos:
        page = hooks.algorithm_page(algo)
        for name, _, _ in config_help(algo.cls.Config):
            assert f"| `{name}` |" in page, f"{algo.name}: {name} missing from its hyperparameter table"
        for preset in load_presets(algo.name):
            assert f"### {preset}\n" in page
        assert "## The update" in page and f"::: {algo.module}.{algo.cls.__name__}" in page


def test_cli_reference_covers_every_command(hooks):
    from ascent.cli import build_parser

    page = hooks.cli_page()
    parser = build_parser()
    for command in parser._subparsers._group_actions[0].choices:
        assert f"### `ascent {command}`" in page


def test_docstrings_keep_their_equations(hooks):
    page = hooks.docstring_markdown("One step on\n\n  L = -E[min(r A, clip(r) A)]\n  more *maths*\n\nThen a_b * c.")
    assert "```text\nL = -E[min(r A, clip(r) A)]\nmore *maths*\n```" in page
    assert "Then a\\_b \\* c." in page


def test_benchmark_rows_and_figures_reach_the_algorithm_pages(hooks):
    ppo = next(a for a in hooks.algorithms() if a.name == "ppo")
    section = hooks.benchmark_markdown(ppo)
    assert "| ppo | CartPole-v1 |" in section and "../benchmarks/figures/ppo-CartPole-v1.png" in section
    anchors = {s.anchor for s in hooks.results()[1]}
    for anchor in re.findall(r"benchmarks\.md#([\w-]+)", section):
        assert anchor in anchors


def test_site_builds_strict(tmp_path):
    """`mkdocs build --strict`: a broken link or anchor, a bad API reference or a generator error fails."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "algorithms" / "ppo" / "index.html").is_file()
    assert (tmp_path / "site" / "benchmarks" / "figures" / "ppo-CartPole-v1.png").is_file()
