"""Takes the annotations of executed examples out of the pages.

A ```python block in the docs is preceded by a comment such as
``<!-- example: passed=3 -->`` that tells ``tests/test_docs.py`` how to run
it (see "Executed examples" in ``docs/design.md``). The comment is for the
tests alone: inside a list item, Python-Markdown would wrap it in a
paragraph of its own, so it is removed before the page is rendered. Inside a
fenced block (a page that shows the convention) it is left alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

ANNOTATION = re.compile(r"^[ \t]*<!-- example:.*-->[ \t]*$")
FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})")


def without_annotations(markdown: str) -> str:
    """The page without the annotation lines outside fenced blocks."""
    kept = []
    fence = None
    for line in markdown.splitlines(keepends=True):
        match = FENCE.match(line)
        if fence is None:
            if match is not None:
                fence = match["fence"]
            elif ANNOTATION.match(line):
                continue
        elif set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence):
            fence = None
        kept.append(line)
    return "".join(kept)


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    return without_annotations(markdown)
