"""Render a run's timeline document as one self-contained HTML page.

The page template lives next to this module as ``timeline.html``: all of its
CSS and JavaScript are inline and it loads nothing from the network, so the
file can be archived as a CI artifact and opened anywhere. The timeline data
(schema ``pytest-concurrently-timeline/1``) is embedded as JSON in a
``<script type="application/json">`` element and drawn on a canvas by the
page's own script.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources

__all__ = ["render_html"]

_TEMPLATE = "timeline.html"
_PLACEHOLDER = "__TIMELINE_DATA__"

# Inside a <script> element the HTML parser only looks for "</script" (and
# "<!--"), never at JSON syntax, so a nodeid like "</script><script>..." would
# end the element early. These characters can only occur inside JSON strings,
# where the \u escapes decode back to the same text.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@functools.cache
def _template() -> str:
    text = resources.files("pytest_concurrently").joinpath(_TEMPLATE).read_text(encoding="utf-8")
    if text.count(_PLACEHOLDER) != 1:  # pragma: no cover - guards template edits
        raise RuntimeError(f"{_TEMPLATE} must contain {_PLACEHOLDER} exactly once")
    return text


def _plain(value: object) -> object:
    # json only knows dict; the document may be built from other mappings.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def render_html(data: Mapping[str, object]) -> str:
    """The whole HTML page for one timeline (the JSON document), self-contained.

    *data* is the timeline document as written to the ``.json`` form of the
    timeline. The page needs nothing else: no network access, no other files.

    Raises ``ValueError`` if the document holds a NaN or infinite number, which
    JSON cannot carry, and ``TypeError`` for values JSON cannot represent.
    """
    payload = json.dumps(
        dict(data), ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_plain
    ).translate(_SCRIPT_SAFE)
    return _template().replace(_PLACEHOLDER, payload, 1)
