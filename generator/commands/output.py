"""How the commands report a run's failures and summary, through the one Reporter.

Light on purpose (the application layer is imported for types only):
`btfhub merge` uses it without loading the HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from generator.model import DiscoveryFailure, KernelOutcome, KernelState
from generator.planner import (
    MIRROR_HINT,
    count_skipped,
    describe_failures,
    describe_incomplete,
    describe_skipped,
)
from generator.progress import Reporter

if TYPE_CHECKING:
    from generator.hub.run import ReconcileReport


def report_failures(
    reporter: Reporter,
    failures: tuple[DiscoveryFailure, ...],
    incomplete: tuple[DiscoveryFailure, ...] = (),
) -> None:
    """Discovery failures: one line per unreachable host, one per other failure;
    then the fallback sources that failed (their releases were listed without them)."""
    for line in describe_failures(failures, "FAILED "):
        reporter.note(line)
    for line in describe_incomplete(incomplete, ""):
        if line == MIRROR_HINT:
            reporter.note(line)
        else:
            reporter.warning(line)


def report_failed_kernels(reporter: Reporter, outcomes: tuple[KernelOutcome, ...]) -> int:
    failed = [o for o in outcomes if o.state is KernelState.FAILED]
    for o in failed:
        reporter.failed(f"{o.kernel.label}: {o.reason or 'unknown reason'}")
    return len(failed)


def undiscovered(
    failures: tuple[DiscoveryFailure, ...], incomplete: tuple[DiscoveryFailure, ...] = ()
) -> str:
    text = f", {len(failures)} release/arch could not be discovered" if failures else ""
    if incomplete:
        text += f", {len(incomplete)} release/arch listed without a failed fallback source"
    return text


def report_summary(reporter: Reporter, report: ReconcileReport) -> None:
    outcomes = report.outcomes
    built = sum(1 for o in outcomes if o.state is KernelState.ARCHIVED)
    ships = sum(1 for k in report.plan.kernels if k.state is KernelState.SHIPS_BTF) + sum(
        1 for o in outcomes if o.state is KernelState.SHIPS_BTF
    )
    already = sum(1 for k in report.plan.kernels if k.state is KernelState.ARCHIVED)
    report_failures(reporter, report.failures, report.incomplete)
    failed = report_failed_kernels(reporter, outcomes)
    skipped = report.plan.needs_operator_input
    for line in describe_skipped(skipped):
        reporter.info(line)
    reporter.info(
        f"summary: {built} built, {already} already there, {ships} ship their own BTF, "
        f"{failed} failed"
        + undiscovered(report.failures, report.incomplete)
        + count_skipped(skipped, ", ")
    )
