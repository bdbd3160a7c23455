"""MkDocs hooks: the pages made from the code at build time, so that nothing generated is committed
and nothing generated can go stale.

- `algorithms/NAME.md`, one per entry of `ascent.registry.ALGORITHMS`: the module docstring (the
  update and the equations it names), the class docstring, the hyperparameters (`config_help`), the
  presets (`load_presets`), the benchmark rows and figures of `benchmarks/`, the Python API;
- `reference/cli.md`, from `ascent.cli.build_parser()`;
- `benchmarks.md`, `benchmarks/RESULTS.md` with an id on every heading, and `benchmarks/figures/*.png`;
- the nav: under each family page of mkdocs.yml's nav, its algorithms' pages;
- in a family page, the `<!-- algorithms -->` marker becomes the table of the family's algorithms;
- `ProseDocstrings`, a Griffe extension (mkdocs.yml), renders the docstrings of the API reference as
  the algorithm pages render module docstrings (`docstring_markdown`).

A registered algorithm in a package folder with no family page fails the build.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
FIGURES = ROOT / "benchmarks" / "figures"

# The package folder of an algorithm -> its family's page and title.
FAMILIES = {
    "algorithms": ("families/single-agent.md", "Single-agent"),
    "distributed": ("families/distributed.md", "Distributed (Ray)"),
    "imitation": ("families/imitation.md", "Imitation"),
    "search": ("families/search.md", "Search and board games"),
    "multiagent": ("families/multi-agent.md", "Multi-agent"),
    "model_based": ("families/model-based.md", "Model-based"),
}
ALGORITHMS_MARKER = "<!-- algorithms -->"

# Other names RESULTS.md's headings give an algorithm (its CLI name and class name are always tried).
HEADING_ALIASES = {
    "apex": ("ape-x",), "apex-dpg": ("ape-x",), "dynaq": ("dyna-q",), "minimaxq": ("minimax-q", "littman's soccer"),
    "cem": ("cross-entropy method",),
    "nashq": ("nash-q",), "qlearning": ("q-learning",), "sarsa": ("q-learning and sarsa",),
    "selfplay": ("self-play",), "offpg": ("off-policy policy gradient",), "ac": ("one-step actor-critic",),
    "iql": ("independent q-learning",),
}
# Figures of benchmarks/figures/ whose name does not start with the algorithm's name.
FIGURE_PREFIXES = {"dynaq": ("dyna-",)}


@dataclasses.dataclass
class Algo:
    name: str      # CLI name
    module: str    # dotted module path
    cls: type

    @property
    def family(self) -> str:
        return self.module.split(".")[1]

    @property
    def page(self) -> str:
        return f"algorithms/{self.name}.md"

    @property
    def summary(self) -> str:
        """The class's own docstring (not its base class's), dedented."""
        return inspect.cleandoc(self.cls.__dict__.get("__doc__") or "")


@cache
def algorithms() -> tuple[Algo, ...]:
    from ascent.registry import ALGORITHMS, get_algorithm

    algos = tuple(Algo(name, spec.split(":")[0], get_algorithm(name)) for name, spec in ALGORITHMS.items())
    for algo in algos:
        if algo.family not in FAMILIES:
            raise RuntimeError(f"docs/hooks.py: {algo.name} lives in ascent/{algo.family}/, which has no family page; "
                               "add it to FAMILIES and write the page")
    return algos


# ---- markdown helpers ----------------------------------------------------------------------------------------------
def escape(text: str, table: bool = False) -> str:
    """Prose from a docstring or a help string as markdown: code spans (`...`) kept, the characters
    markdown would read as emphasis, links or HTML escaped (and pipes, in a table cell)."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        part = re.sub(r"([\\*_\[\]])", r"\\\1", parts[i]).replace("<", "&lt;").replace(">", "&gt;")
        parts[i] = part.replace("|", "\\|") if table else part
    return "".join(parts)


def docstring_markdown(doc: str) -> str:
    """A docstring as markdown: its prose lines escaped, its indented lines (equations, the steps of
    an update) in a text block as written."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        while block and not block[-1]:
            block.pop()
        if block:
            indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
            out.extend(["", "```text", *(line[indent:] for line in block), "```", ""])
            block.clear()

    for line in doc.strip("\n").splitlines():
        if line[:1].isspace() and line.strip():
            block.append(line.rstrip())
        elif not line.strip() and block:
            block.append("")
        else:
            flush()
            prose = re.sub(r"^#", r"\\#", escape(line))  # (not a heading, nor a numbered list)
            out.append(re.sub(r"^(\d+)\.(\s)", r"\1\\.\2", prose) if line.strip() else "")
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


class ProseDocstrings(griffe.Extension):
    """ascent's docstrings are prose whose indented lines are equations or steps: in the API reference
    too, those lines stay as written and the prose is not read as markdown emphasis."""

    def on_object(self, *, obj, **kwargs) -> None:
        docstring = obj.docstring
        if docstring is not None and not getattr(docstring, "ascent_prose", False):
            docstring.value = docstring_markdown(docstring.value)
            docstring.ascent_prose = True


def module_docstring(module: str) -> str:
    path = ROOT / (module.replace(".", "/") + ".py")
    return ast.get_docstring(ast.parse(path.read_text()), clean=True) or ""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def code(value: Any) -> str:
    text = repr(value)
    return f"`{text}`" if "|" not in text and "`" not in text else escape(text, table=True)


# ---- benchmarks/RESULTS.md -------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Section:
    level: int
    title: str
    anchor: str
    path: str        # "H2 title › H3 title", each without its parentheses
    tables: list[list[str]]


def short_title(title: str) -> str:
    """A heading of RESULTS.md without its parentheses (the commands and conditions of a run)."""
    while True:
        shorter = re.sub(r"\s*\([^()]*\)", "", title)
        if shorter == title:
            return shorter.strip()
        title = shorter


@cache
def results() -> tuple[list[str], list[Section]]:
    """RESULTS.md's lines with `{#id}` on every heading, and its sections with their tables."""
    lines, sections, used = [], [], set()
    parents: dict[int, str] = {}
    table: list[str] = []

    def end_table() -> None:
        if table and sections:
            sections[-1].tables.append(list(table))
        table.clear()

    for line in RESULTS.read_text().splitlines():
        heading = re.match(r"(#{2,6})\s+(.*?)\s*$", line)
        if heading:
            end_table()
            level, title = len(heading.group(1)), heading.group(2)
            words = re.sub(r"[^a-z0-9]+", " ", short_title(title).lower().replace("`", "")).split()
            base = "-".join(words[:8]) or "section"
            anchor, n = base, 1
            while anchor in used:
                n += 1
                anchor = f"{base}-{n}"
            used.add(anchor)
            parents = {k: v for k, v in parents.items() if k < level}
            parents[level] = short_title(title)
            sections.append(Section(level, title, anchor, " › ".join(parents[k] for k in sorted(parents)), []))
            lines.append(f"{line} {{#{anchor}}}")
            continue
        if line.startswith("|"):
            table.append(line)
        else:
            end_table()
        lines.append(line)
    end_table()
    return lines, sections


def cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def row_owner(first_cell: str) -> str:
    """The algorithm a benchmark row is about: the first word of its first cell (`ppo CartPole-v1 100k`)."""
    return re.split(r"[\s,(]", first_cell.strip().strip("`").lower() + " ", maxsplit=1)[0]


def benchmark_markdown(algo: Algo) -> str:
    _, sections = results()
    names = {algo.name, algo.cls.__name__.lower(), *HEADING_ALIASES.get(algo.name, ())}
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])")
    linked, tables = [], []
    for section in sections:
        for rows in section.tables:
            header, separator, body = rows[0], rows[1], rows[2:]
            mine, owner = [], None
            for row in body:
                first = cells(row)[0]
                owner = row_owner(first) if first else owner  # a row with an empty first cell continues the last
                if owner == algo.name or row_owner(cells(header)[0]) == algo.name:  # its row, or its whole table
                    mine.append(row)
            if mine:
                if section not in linked:
                    linked.append(section)
                    tables.append(f"From [{escape(section.path)}](../benchmarks.md#{section.anchor}):")
                tables.append("\n".join([header, separator, *mine]))
        if pattern.search(section.title.lower().replace("`", "")) and section not in linked:
            linked.append(section)
    prefixes = FIGURE_PREFIXES.get(algo.name, (algo.name + "-",))
    others = [a.name for a in algorithms() if a.name != algo.name and a.name.startswith(algo.name + "-")]
    figures = [p for p in sorted(FIGURES.glob("*.png")) if p.name.startswith(prefixes)
               and not any(p.name.startswith(o + "-") for o in others)]
    if not (linked or tables or figures):
        return "No benchmark of it in `benchmarks/RESULTS.md` yet.\n"
    parts = []
    if linked:
        parts.append("In [the benchmarks](../benchmarks.md): "
                     + "; ".join(f"[{escape(s.path)}](../benchmarks.md#{s.anchor})" for s in linked) + ".")
    parts.extend(tables)
    parts.extend(f"![{p.stem}](../benchmarks/figures/{p.name})" for p in figures)
    return "\n\n".join(parts) + "\n"


def benchmarks_page() -> str:
    lines, _ = results()
    gallery = [f"### {p.stem}\n\n![{p.stem}](benchmarks/figures/{p.name})\n" for p in sorted(FIGURES.glob("*.png"))]
    return ("\n".join(lines) + "\n\n## Figures {#figures}\n\n"
            "Every figure of `benchmarks/figures/` (the sections above give the commands that drew them).\n\n"
            + "\n".join(gallery))


# ---- the algorithm pages ---------------------------------------------------------------------------------------------
def algorithm_page(algo: Algo) -> str:
    from ascent.core.config import config_help, load_presets

    cls = algo.cls
    siblings = [a.name for a in algorithms() if a.module == algo.module and a.name != algo.name]
    family, title = FAMILIES[algo.family]
    out = [f"# {algo.name}: {cls.__name__}", ""]
    if algo.summary:
        out += [docstring_markdown(algo.summary), ""]
    out += [f"`ascent train {algo.name} --env ENV` · `ascent.{cls.__name__}` (`{algo.module}`) · "
            f"family: [{title}](../{family})", ""]
    out += ["## The update", ""]
    if siblings:
        also = ", ".join(f"[{s}]({s}.md)" for s in siblings)
        out += [f"From the docstring of `{algo.module}`, which also holds {also}:", ""]
    else:
        out += [f"From the docstring of `{algo.module}`:", ""]
    out += [docstring_markdown(module_docstring(algo.module)), ""]

    out += ["## Hyperparameters", "",
            f"`ascent list {algo.name}` prints this table. Set one with `--set NAME=VALUE` on the command line or "
            f"`ascent.{cls.__name__}(env, NAME=VALUE)` in Python; a preset sets several.", "",
            "| name | default | what |", "|---|---|---|"]
    for name, help_text, default in config_help(cls.Config):
        out.append(f"| `{name}` | {code(default)} | {escape(help_text, table=True)} |")
    out.append("")

    out += ["## Presets", ""]
    presets = load_presets(algo.name)
    if not presets:
        out += ["None: every env starts from the defaults above.", ""]
    for preset, values in presets.items():
        envs = values.get("envs", [])
        out += [f"### {preset}", ""]
        description = values.get("description", "")
        about = [escape(description[:1].upper() + description[1:]) + "." if description else ""]
        about.append(f"The default for {', '.join(envs)}." if envs else
                     f"Chosen by name: `--preset {preset}`.")
        if "n_timesteps" in values:
            about.append(f"`--steps` defaults to {int(values['n_timesteps']):,} with it.")
        out += [" ".join(a for a in about if a), ""]
        settings = [f"{k} = {toml_value(v)}" for k, v in values.items() if k not in ("envs", "description", "n_timesteps")]
        if settings:
            out += ["```toml", *settings, "```", ""]

    out += ["## Benchmarks", "", benchmark_markdown(algo), ""]
    out += ["## Python API", "", f"::: {algo.module}.{cls.__name__}", "    options:", "      heading_level: 3", ""]
    return "\n".join(out)


def family_table(page: str) -> str:
    rows = ["| name | class | what |", "|---|---|---|"]
    for algo in algorithms():
        if FAMILIES[algo.family][0] == page:
            doc = algo.summary.split("\n\n")[0].replace("\n", " ")
            rows.append(f"| [`{algo.name}`](../{algo.page}) | `ascent.{algo.cls.__name__}` | {escape(doc, table=True)} |")
    return "\n".join(rows)


# ---- the CLI reference -----------------------------------------------------------------------------------------------
def expand_help(action: argparse.Action, prog: str) -> str:
    if not action.help:
        return ""
    try:
        return action.help % {**vars(action), "prog": prog}
    except (KeyError, TypeError, ValueError):
        return action.help


def cli_section(parser: argparse.ArgumentParser, title: str, help_text: str, level: int) -> list[str]:
    out = [f"{'#' * level} `{title}`", ""]
    if help_text:
        out += [escape(help_text[:1].upper() + help_text[1:]) + ("" if help_text.endswith(".") else "."), ""]
    out += ["```text", parser.format_usage().strip(), "```", ""]
    rows, commands = [], []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            commands = [(name, sub, helps.get(name, "")) for name, sub in action.choices.items()]
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                names += " " + (action.metavar or action.dest.upper())
        else:
            names = action.metavar or action.dest
        default = action.default
        unset = default is None or default is False or default == [] or default is argparse.SUPPRESS
        shown = ("required" if action.required and action.option_strings else
                 "" if unset or not action.option_strings else code(default))
        what = expand_help(action, parser.prog)
        if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
            what = (what + "; " if what else "") + "one of " + ", ".join(map(str, action.choices))
        rows.append(f"| `{names}` | {shown} | {escape(what, table=True)} |")
    if rows:
        out += ["| argument | default | what |", "|---|---|---|", *rows, ""]
    for name, sub, sub_help in commands:
        out += cli_section(sub, f"{title} {name}", expand_help(argparse.Action([], name, help=sub_help), sub.prog),
                           level + 1 if level < 4 else level)
    return out


def cli_page() -> str:
    from ascent.cli import build_parser

    parser = build_parser()
    out = ["# CLI reference", "",
           "Generated from the argument parser (`ascent.cli.build_parser()`) when the site is built: "
           "`ascent COMMAND --help` prints the same. A user error (an unknown algorithm, env or hyperparameter, "
           "a bad value, a missing or corrupt run directory) exits with status 2 and one line "
           "`ascent: error: ...`.", ""]
    out += cli_section(parser, "ascent", parser.description or "", 2)
    return "\n".join(out)


# ---- MkDocs events ---------------------------------------------------------------------------------------------------
def on_config(config):
    """Under each family page of the nav, that family's algorithm pages."""
    algorithms.cache_clear()  # (`mkdocs serve` builds again in this process)
    results.cache_clear()
    titles = dict(FAMILIES.values())

    def expand(items: list) -> list:
        out = []
        for item in items:
            if isinstance(item, str) and item in titles:
                pages = [{a.name: a.page} for a in algorithms() if FAMILIES[a.family][0] == item]
                out.append({titles[item]: [{"Overview": item}, *pages]})
            elif isinstance(item, dict):
                out.append({k: expand(v) if isinstance(v, list) else v for k, v in item.items()})
            else:
                out.append(item)
        return out

    config["nav"] = expand(config["nav"])
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for algo in algorithms():
        files.append(File.generated(config, algo.page, content=algorithm_page(algo)))
    files.append(File.generated(config, "reference/cli.md", content=cli_page()))
    files.append(File.generated(config, "benchmarks.md", content=benchmarks_page()))
    for png in sorted(FIGURES.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/figures/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown, page, config, files):
    if ALGORITHMS_MARKER in markdown:
        markdown = markdown.replace(ALGORITHMS_MARKER, family_table(page.file.src_uri))
    return markdown
