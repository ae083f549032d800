"""`btfhub site`'s one step with I/O: the inputs read, the site's files written.

Every file is computed before the first is written, so bad input (an
invalid catalog, a damaged or foreign index.json) leaves DIR as it was; each
file is then written atomically and only when its bytes changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from generator.catalog import load_catalog
from generator.consumer.hostmap import HostRules, load_host_rules, rules_path
from generator.consumer.hubindex import HubIndex, is_url
from generator.errors import BtfhubError
from generator.fsutil import write_if_changed
from generator.model import Catalog
from generator.site.data import HubLinks, SiteData, build_site_data
from generator.site.page import PAGE_FILE, site_files


@dataclass(frozen=True)
class SiteReport:
    output: Path
    page: Path
    sizes: tuple[tuple[str, int], ...]  # every file of the site and its size, by name
    written: tuple[str, ...]  # those whose bytes changed
    data: SiteData


def hub_links(hub: HubIndex, index_url: str | None) -> HubLinks:
    """What readers' commands and links use.

    index_url (say, the raw URL of the published index.json) wins over the
    location the site was built from; a local index is shown as its absolute
    path, its files linked from that checkout.
    """
    shown = index_url or (hub.source if is_url(hub.source) else str(Path(hub.source).resolve()))
    beside = urljoin(shown, ".") if is_url(shown) else None
    local = hub.local_root.as_uri() + "/" if hub.local_root is not None else None
    download = hub.base_url or beside or local
    # --base-url only when the files are not where fetch looks by itself.
    command_base = hub.base_url if hub.base_url and hub.base_url != beside else None
    return HubLinks(shown, command_base, download)


@dataclass(frozen=True)
class SiteInputs:
    """What the site takes from the hub's checkout (read first: no download when invalid)."""

    catalog: Catalog
    rules: HostRules


def read_inputs(root: Path) -> SiteInputs:
    return SiteInputs(load_catalog(root), load_host_rules(rules_path(root)))


def write_site(
    inputs: SiteInputs, hub: HubIndex, output: Path, index_url: str | None = None
) -> SiteReport:
    """The coverage site of the catalog and hub's index, written into output."""
    if output.exists() and not output.is_dir():
        raise BtfhubError(f"--output {output}: not a directory")
    data = build_site_data(inputs.catalog, hub.document, inputs.rules, hub_links(hub, index_url))
    files = site_files(data)
    output.mkdir(parents=True, exist_ok=True)
    written = tuple(
        name for name, body in sorted(files.items()) if write_if_changed(output / name, body)
    )
    sizes = tuple((name, len(body)) for name, body in sorted(files.items()))
    return SiteReport(output, output / PAGE_FILE, sizes, written, data)
