"""What the hunt shows while it runs, and the summary it prints at the end.

On a terminal a live table (rich): elapsed time, cases per second overall and per
component, framework and dtype, findings so far (new, and met again from earlier hunts),
screened suspects and how many the property did not confirm, crashes. Elsewhere (a log
file, CI) one plain line every `every` seconds. The summary adds where the time went
(reference, framework calls, screen, confirmation, minimization, the property lane), the
figure that bounds the throughput.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from conformance.hunt.engine import Stats


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"


def headline(stats: Stats) -> str:
    elapsed = stats.elapsed()
    minutes, seconds = divmod(int(elapsed), 60)
    lanes = ", ".join(f"{lane} {count:,}" for lane, count in sorted(stats.lanes.items()))
    return (
        f"hunt {minutes}:{seconds:02d}: {stats.total():,} cases ({_rate(stats.total(), elapsed)};"
        f" {lanes or 'starting'}); findings {len(stats.new)} new, {stats.seen_again} seen before;"
        f" {stats.suspects} screened suspects, {stats.unconfirmed} not confirmed; {stats.crashes} crashes"
    )


def rows(stats: Stats) -> list[tuple[str, str, str, str, str]]:
    elapsed = stats.elapsed()
    return [(c, f, d, f"{n:,}", _rate(n, elapsed)) for (c, f, d), n in sorted(stats.cases.items())]


class PlainDisplay:
    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.stream = stream or sys.stdout  # at call time: a test's captured stdout changes
        self.every, self.last = every, time.monotonic()

    def update(self, stats: Stats) -> None:
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(headline(stats), file=self.stream, flush=True)

    def stop(self, stats: Stats) -> None:
        pass


class LiveDisplay:
    """rich's live table, redrawn at most four times a second."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.live = Live(console=Console(), refresh_per_second=4, transient=False)
        self.live.start()

    def _render(self, stats: Stats) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for name in ("component", "framework", "dtype", "checks", "checks/s"):
            table.add_column(name, justify="right" if name.startswith("cases") else "left")
        for row in rows(stats):
            table.add_row(*row)
        return Group(headline(stats), table)

    def update(self, stats: Stats) -> None:
        self.live.update(self._render(stats))

    def stop(self, stats: Stats) -> None:
        self.live.update(self._render(stats))
        self.live.stop()


def display(stream: TextIO | None = None) -> PlainDisplay | LiveDisplay:
    stream = stream or sys.stdout
    if stream.isatty():
        try:
            return LiveDisplay()
        except ImportError:
            pass
    return PlainDisplay(stream)


def summary(stats: Stats, out: str, seed: int) -> str:
    elapsed = stats.elapsed()
    how = "interrupted" if stats.interrupted else "budget spent"
    lines = [
        f"hunt ended ({how}) after {elapsed:.1f} s, seed {seed}: {stats.total():,} cases,"
        f" {_rate(stats.total(), elapsed)} on average, {stats.tasks} tasks"
    ]
    lines.append(
        "  cases per component: "
        + ", ".join(f"{c} {n:,} ({_rate(n, elapsed)})" for c, n in sorted(stats.drawn.items()))
    )
    lines.append("  checks per component, framework and dtype:")
    width = max((len(f"{c} {f} {d}") for c, f, d, _, _ in rows(stats)), default=0)
    lines += [f"  {f'{c} {f} {d}':<{width}}  {n:>10} {r:>9}" for c, f, d, n, r in rows(stats)]
    lines.append("  tasks per worker: " + ", ".join(f"{w} {n}" for w, n in sorted(stats.workers.items())))
    busy = sum(stats.microseconds.values())
    if busy:
        split = ", ".join(f"{k} {v / busy:.0%}" for k, v in stats.microseconds.most_common())
        lines.append(f"  worker time ({busy / 1e6:.1f} s): {split}")
    lines.append(
        f"  screened suspects {stats.suspects}, not confirmed by the property {stats.unconfirmed};"
        f" crashes {stats.crashes}"
    )
    for note in stats.unconfirmed_notes[:5]:
        lines.append(f"    not confirmed: {note}")
    for error in stats.errors[:5]:
        lines.append(f"  population runner error (the single case decided): {error}")
    lines.append(f"  findings: {len(stats.new)} new, {stats.seen_again} seen before (in {out}/findings.md)")
    for finding in sorted(stats.new, key=lambda f: f.rank()):
        known = f" [known issue {finding.known_issue.split(' ')[0]}]" if finding.known_issue else ""
        lines.append(f"    {finding.title()}{known}: {finding.folder}/")
    return "\n".join(lines)
