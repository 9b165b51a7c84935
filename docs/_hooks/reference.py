"""The reference of options, ini keys and markers, made from the plugin's own registrations.

MkDocs runs this module as a hook (``hooks:`` in ``mkdocs.yml``). A page asks
for a generated part with a comment on a line of its own::

    <!-- generated: options -->
    <!-- generated: markers -->

and the comment is replaced, when the site is built, by what
``pytest_concurrently.plugin`` registers: its ``pytest_addoption`` is called
with pytest's own ``Parser`` (the command-line options of its groups, and the
ini keys of its ini registry), and its ``pytest_configure`` with a stand-in
for the config that keeps the ``markers`` lines it adds. So an option, an ini
key or a marker cannot be added without showing up on the reference page;
the hand-written prose around the comments explains them.

``tests/test_docs.py`` checks the output against the registries of a real
pytest session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from _pytest.config.argparsing import Parser

from pytest_concurrently import plugin

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

#: A placeholder for a generated part, alone on its line.
PLACEHOLDER = re.compile(r"^<!-- generated: (?P<part>[a-z-]+) -->[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Option:
    """A command-line option, as ``pytest_addoption`` registers it."""

    names: tuple[str, ...]
    dest: str
    metavar: str | None
    choices: tuple[str, ...] | None
    flag: bool
    help: str

    @property
    def usage(self) -> str:
        """How the option is written: ``--concurrency N``."""
        if self.flag:
            value = ""
        elif self.metavar:
            value = " " + self.metavar
        elif self.choices:
            value = " {" + ",".join(self.choices) + "}"
        else:
            value = " " + self.dest.upper()
        return ", ".join(self.names) + value


@dataclass(frozen=True)
class IniKey:
    """An ini key, as ``pytest_addoption`` registers it."""

    name: str
    help: str
    type: str
    default: object


@dataclass(frozen=True)
class Marker:
    """A marker, as ``pytest_configure`` registers it: ``name(args): what it does``."""

    signature: str
    description: str

    @property
    def name(self) -> str:
        return self.signature.partition("(")[0]


def _parser() -> Parser:
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    return parser


def registered_options() -> list[Option]:
    """The plugin's command-line options, in the order it registers them."""
    options = []
    for group in _parser()._groups:
        for argument in group.options:
            attrs = argument.attrs()
            choices = attrs.get("choices")
            options.append(
                Option(
                    names=tuple(argument.names()),
                    dest=str(attrs["dest"]),
                    metavar=attrs.get("metavar"),
                    choices=tuple(choices) if choices else None,
                    # pytest 8 keeps the action's name, pytest 9 the argparse
                    # action, which takes no value when nargs is 0.
                    flag=attrs.get("action") in ("store_true", "store_false")
                    or attrs.get("nargs") == 0,
                    help=str(attrs.get("help") or ""),
                )
            )
    return options


def registered_ini_keys() -> list[IniKey]:
    """The plugin's ini keys, in the order it registers them."""
    return [
        IniKey(name=name, help=help, type=str(type or "string"), default=default)
        for name, (help, type, default) in _parser()._inidict.items()
    ]


def registered_markers() -> list[Marker]:
    """The plugin's markers, in the order it registers them."""
    markers = []
    for line in plugin.MARKERS:
        signature, colon, description = line.partition(": ")
        if not colon:
            raise ValueError(f"a marker line without 'name: description': {line!r}")
        markers.append(Marker(signature=signature.strip(), description=description.strip()))
    return markers


def _text(text: str) -> str:
    """Help text as markdown: options in code, nothing that breaks a table."""
    text = " ".join(text.split())
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("<", "&lt;")
    return re.sub(r"(?<![\w`-])(--[a-z][a-z-]*(?:=[\w.-]+)?)", r"`\1`", text)


def _default(value: object) -> str:
    if value is None or value == [] or value == "":
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`" + " ".join(str(item) for item in value) + "`"
    return f"`{value}`"


def render_options() -> str:
    """One table row per option and per ini key; an option and the ini key
    of the same name (its default) share a row."""
    keys = {key.name: key for key in registered_ini_keys()}
    rows = [
        "| command line | ini key | ini type | default | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for option in registered_options():
        key = keys.pop(option.dest, None)
        rows.append(
            f"| `{option.usage}` | "
            + (f"`{key.name}` | {key.type} | {_default(key.default)}" if key else " | | none")
            + f" | {_text(option.help)} |"
        )
    for key in keys.values():
        rows.append(
            f"| | `{key.name}` | {key.type} | {_default(key.default)} | {_text(key.help)} |"
        )
    return "\n".join(rows)


def render_markers() -> str:
    """One definition per marker, as ``pytest --markers`` lists it."""
    return "\n\n".join(
        f"`@pytest.mark.{marker.signature}`\n:   {_text(marker.description)}"
        for marker in registered_markers()
    )


#: What each placeholder is replaced with.
PARTS: dict[str, Callable[[], str]] = {"options": render_options, "markers": render_markers}


def fill_in(markdown: str) -> str:
    """The page with each placeholder replaced by its generated part.

    :raises ValueError: for a placeholder of no known part.
    """

    def part(match: re.Match[str]) -> str:
        name = match["part"]
        if name not in PARTS:
            raise ValueError(f"no generated part {name!r}; known parts: {', '.join(sorted(PARTS))}")
        return PARTS[name]()

    return PLACEHOLDER.sub(part, markdown)


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    from mkdocs.exceptions import PluginError

    try:
        return fill_in(markdown)
    except ValueError as error:
        raise PluginError(f"{page.file.src_uri}: {error}") from error
