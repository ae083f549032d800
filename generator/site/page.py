"""The coverage site's files: index.html (Jinja2), data.js, and the static script and style.

Pure: `site_files` turns a SiteData into {name: bytes}, the same bytes for
the same data (no timestamps, sorted JSON). The page needs no server and no
network: the data is a script file, not JSON fetched at view time, since a
browser refuses fetch() of a file:// URL.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from generator.resources import PACKAGE, read_package_text
from generator.site.data import STATE_WORDS, SiteData

TEMPLATE = "site.html.j2"
STATIC = ("site.js", "site.css")  # generator/site/static/, copied as they are
DATA_FILE = "data.js"
PAGE_FILE = "index.html"
# Where the page's script finds the data (site.js reads this global).
DATA_GLOBAL = "BTFHUB_SITE"
# Kernels the page lists at once, and more per press of "Show more": each is a
# card of a dozen elements, and a search typed letter by letter redraws them.
RESULT_LIMIT = 25

# CommonMark with raw HTML escaped: a manifest's note cannot inject markup.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def note_html(markdown: str) -> Markup:
    return Markup(_MARKDOWN.render(markdown))


@functools.cache
def _environment() -> jinja2.Environment:
    # One per process, as Jinja intends: it keeps the compiled template.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["note_html"] = note_html
    return env


def data_script(data: SiteData) -> bytes:
    """data.js: the search's document, parsed by JSON.parse (faster than a JS literal)."""
    document = json.dumps(data.script, sort_keys=True, separators=(",", ":"))
    settings: dict[str, Any] = {"limit": RESULT_LIMIT}
    return (
        f"window.{DATA_GLOBAL} = JSON.parse({json.dumps(document)});\n"
        f"window.{DATA_GLOBAL}.settings = {json.dumps(settings, sort_keys=True)};\n"
    ).encode()


def render_page(data: SiteData) -> bytes:
    template = _environment().get_template(TEMPLATE)
    text = template.render(
        site=data,
        words={state.value: word for state, word in STATE_WORDS.items()},
        data_file=DATA_FILE,
        static=STATIC,
    )
    return text.encode()


def site_files(data: SiteData) -> dict[str, bytes]:
    files = {PAGE_FILE: render_page(data), DATA_FILE: data_script(data)}
    for name in STATIC:
        files[name] = read_package_text(f"site/static/{name}").encode()
    return files
