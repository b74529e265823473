"""The accuracy/latency frontier of ``headstart compress``: a plot and a one-page report."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from headstart.compression.measure import Measurement
from headstart.evaluation.report import _figure, _img, _png, page


def pareto(results: list[Measurement]) -> list[Measurement]:
    """The models no other model beats on both batch-1 latency and accuracy, fastest first."""
    front, best = [], -1.0
    for m in sorted(results, key=lambda r: (r.ms_batch1, -r.accuracy)):
        if m.accuracy > best:
            front.append(m)
            best = m.accuracy
    return front


def frontier_plot(results: list[Measurement], recommended: str, path: Path) -> Path:
    """Accuracy (95% interval) against CPU latency per item at batch 1, the frontier dashed."""
    fig, ax = _figure()
    for m in results:
        err = [[100 * (m.accuracy - m.ci_low)], [100 * (m.ci_high - m.accuracy)]]
        ax.errorbar(m.ms_batch1, 100 * m.accuracy, yerr=err, fmt="o", capsize=3,
                    color="tab:red" if m.name == recommended else "tab:blue")
        ax.annotate(m.name, (m.ms_batch1, 100 * m.accuracy), textcoords="offset points", xytext=(5, 5))
    front = pareto(results)
    ax.plot([m.ms_batch1 for m in front], [100 * m.accuracy for m in front], "--", color="grey", lw=1)
    ax.set_xlabel("CPU latency per item at batch 1 (ms)")
    ax.set_ylabel("accuracy (%), 95% interval")
    ax.set_title(f"accuracy / latency frontier (recommended: {recommended})")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    _png(fig)  # closes the figure
    return path


def write_report(results: list[Measurement], table: str, summary: dict[str, Any], path: Path, plot: Path) -> Path:
    """report.html: the recommendation, the table, the frontier plot and every step's notes."""
    import base64

    notes = "".join(f"<li><b>{html.escape(m.name)}</b>: {html.escape(m.notes)}</li>" for m in results)
    sections = [("Models", f"<pre>{html.escape(table)}</pre>"),
                ("Accuracy / latency frontier", _img(base64.b64encode(plot.read_bytes()).decode(), "frontier")),
                ("Notes", f"<ul>{notes}</ul>"),
                ("compress.json", f"<pre>{html.escape(json.dumps(summary, indent=2, default=str))}</pre>")]
    verdict = f"recommended for {summary['target']}: {summary['recommended']} ({summary['why']})"
    path.write_text(page("headstart compress", sections, [verdict]))
    return path
