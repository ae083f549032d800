"""The text of btfhub's commits: a summary line, then the kernels added and failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def commit_message(
    added: Mapping[str, Sequence[str]], failed: Mapping[str, Sequence[tuple[str, str]]]
) -> str:
    """Summary line plus, per distribution, the kernels added and those that failed (why)."""
    n_added = sum(len(v) for v in added.values())
    n_failed = sum(len(v) for v in failed.values())
    if n_added:
        summary = f"btfhub: add {n_added} BTF file{'' if n_added == 1 else 's'}"
        if n_failed:
            summary += f" ({n_failed} failed)"
    elif n_failed:
        summary = f"btfhub: record {n_failed} failed kernel{'' if n_failed == 1 else 's'}"
    else:
        summary = "btfhub: regenerate README.md and index.json"
    lines = [summary]
    if n_added:
        lines += ["", "Added:"]
        for distro in sorted(added):
            if added[distro]:
                lines.append(f"  {distro}:")
                lines += [f"    {k}" for k in sorted(added[distro])]
    if n_failed:
        lines += ["", "Failed:"]
        for distro in sorted(failed):
            if failed[distro]:
                lines.append(f"  {distro}:")
                for kernel, reason in sorted(failed[distro]):
                    # One line per kernel, whatever the tool's error looked like.
                    short = " ".join(reason.split())
                    if len(short) > 200:
                        short = short[:197] + "..."
                    lines.append(f"    {kernel}: {short}")
    return "\n".join(lines) + "\n"
