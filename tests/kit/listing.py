"""An Apache-style directory listing (mod_autoindex), as oss.oracle.com serves its debuginfo.

The page has what the real one has around the file links: sort links with
query strings, a parent-directory link, unquoted and single-quoted
attributes, entities and approximate sizes (never exact, never a checksum).
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path
from urllib.parse import quote

HEAD = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
    "<html>\n <head>\n  <title>Index of {title}</title>\n </head>\n <body>\n"
    "<h1>Index of {title}</h1>\n"
    '<pre><img src="/icons/blank.gif" alt="Icon "> <a href="?C=N;O=D">Name</a>'
    "                    <a href=?C=M;O=A>Last modified</a>"
    "      <a href='?C=S;O=A'>Size</a>  <hr>"
    '<img src="/icons/back.gif" alt="[PARENTDIR]"> <a href="/{parent}">Parent Directory</a>'
    "                             -\n"
)
ROW = '<img src="/icons/unknown.gif" alt="[   ]"> <a href="{href}">{text}</a> {date}  {size}\n'
TAIL = "<hr></pre>\n<address>Apache Server at oss.oracle.com Port 443</address>\n</body></html>\n"


def _human(size: int) -> str:
    for unit in ("", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "" else f"{size:.1f}{unit}"
        size //= 1024
    return str(size)


def write_html_listing(directory: Path, title: str) -> Path:
    """directory/index.html linking every other file in it, sorted by name."""
    rows = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.name != "index.html"):
        date = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
        rows.append(
            ROW.format(
                href=quote(path.name),
                text=html.escape(path.name),
                date=date.strftime("%d-%b-%Y %H:%M"),
                size=_human(path.stat().st_size),
            )
        )
    parent = title.strip("/").rsplit("/", 1)[0] + "/" if "/" in title.strip("/") else ""
    page = HEAD.format(title=html.escape(title), parent=parent) + "".join(rows) + TAIL
    out = directory / "index.html"
    out.write_text(page, encoding="utf-8")
    return out
