"""The drill report as one self-contained HTML file: inline CSS, an inline SVG chart, no scripts
or external assets (it must open from a mail attachment or an air-gapped disk).

Machine hooks for tests and scrapers: each phase row has ``data-phase`` / ``data-seconds``, the
chart is ``<svg id="history-chart">`` with one ``<g class="drill" data-drill=...>`` per drill,
and the full report is embedded as JSON in ``<script type="application/json" id="drill-report">``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lifeboat.ops.drill_report import DrillReport

PHASE_COLORS = {
    "sandbox": "#94a3b8",
    "fetch": "#0ea5e9",
    "schema": "#6366f1",
    "data": "#22c55e",
    "indexes": "#eab308",
    "analyze": "#f97316",
    "switch": "#78716c",
    "target": "#94a3b8",
    "teardown": "#cbd5e1",
    "restore": "#64748b",
    "verify": "#a855f7",
    "compare": "#14b8a6",
    "smoke": "#ec4899",
}
CHART_W, CHART_H = 860, 300
MARGIN_L, MARGIN_B, MARGIN_T, MARGIN_R = 56, 58, 16, 12

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:960px;color:#0f172a;
background:#f8fafc;padding:0 1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #cbd5e1}
.badge{display:inline-block;padding:.2rem .7rem;border-radius:999px;font-weight:700;color:#fff}
.pass{background:#16a34a}.fail{background:#dc2626}
.reason{background:#fee2e2;border:1px solid #fca5a5;padding:.8rem;border-radius:6px;margin:1rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{color:#475569}dd{margin:0}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #e2e8f0;font-size:.92rem}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{height:.8rem;border-radius:3px;display:inline-block;vertical-align:middle}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:middle}
.legend span{margin-right:1rem;font-size:.85rem}svg{background:#fff;border:1px solid #e2e8f0;border-radius:6px}
.ok{color:#16a34a}.bad{color:#dc2626;font-weight:600}code{font-size:.85rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_drill_html(report: DrillReport, history: Sequence[DrillReport]) -> str:
    """The whole page for ``report``; ``history`` (oldest first) feeds the chart."""
    verdict = (
        '<span class="badge pass">PASSED</span>' if report.ok else '<span class="badge fail">FAILED</span>'
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Lifeboat drill {_e(report.id)} — {'passed' if report.ok else 'FAILED'}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Restore drill {verdict}</h1>",
        _reason(report),
        _facts(report),
        "<h2>Phases</h2>",
        _phase_table(report),
        "<h2>Drill history</h2>",
        _legend(),
        history_chart(history),
        _verify_section(report),
        _compare_section(report),
        _smoke_section(report),
        _embedded_json(report),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _reason(report: DrillReport) -> str:
    if report.ok:
        return ""
    return (
        f'<div class="reason" id="failure"><strong>Failed in phase {_e(report.failed_phase)}</strong> '
        f"(exit code {report.exit_code}): {_e(report.reason)}</div>"
    )


def _facts(report: DrillReport) -> str:
    rto = "—" if report.rto_seconds is None else f"{report.rto_seconds:.1f} s"
    rows = [
        (
            "Snapshot",
            f"<code>{_e(report.snapshot[:12])}</code> taken {_e(report.snapshot_time.isoformat()[:19])} UTC",
        ),
        ("Tags", _e(", ".join(report.snapshot_tags) or "—")),
        ("Letta release", _e(report.letta_release or "unknown")),
        ("Repository", f"<code>{_e(report.repository)}</code>"),
        ("Restored into", _e(report.target)),
        ("Data", f"{report.tables} tables, {report.rows:,} rows, {report.raw_bytes / 1e6:.1f} MB"),
        ("Started", f"{_e(report.started_at.isoformat()[:19])} UTC, {report.seconds:.1f} s in all"),
        ("RTO (restore until the database is ready)", f'<strong id="rto">{rto}</strong>'),
    ]
    if report.service_rto_seconds is not None:
        rows.append(("RTO incl. Letta server start", f"{report.service_rto_seconds:.1f} s"))
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _phase_table(report: DrillReport) -> str:
    longest = max((phase.seconds for phase in report.phases), default=0.0) or 1.0
    rows = ['<table id="phases"><tr><th>phase</th><th>seconds</th><th></th><th>result</th></tr>']
    for phase in report.phases:
        width = max(2, round(260 * phase.seconds / longest))
        color = PHASE_COLORS.get(phase.name, "#64748b")
        result = (
            '<span class="ok">ok</span>'
            if phase.ok
            else f'<span class="bad">failed: {_e(phase.detail)}</span>'
        )
        rows.append(
            f'<tr data-phase="{_e(phase.name)}" data-seconds="{phase.seconds:.3f}" data-ok="{str(phase.ok).lower()}">'
            f'<td>{_e(phase.name)}</td><td class="num">{phase.seconds:.2f}</td>'
            f'<td><span class="bar" style="width:{width}px;background:{color}"></span></td><td>{result}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _legend() -> str:
    items = "".join(
        f'<span><i class="swatch" style="background:{color}"></i>{_e(name)}</span>'
        for name, color in PHASE_COLORS.items()
    )
    return f'<p class="legend">{items}<span>● RTO</span><span>✕ = failed drill</span></p>'


def history_chart(history: Sequence[DrillReport]) -> str:
    """Stacked bars: one per drill (oldest left), one segment per phase, height = seconds."""
    plot_w, plot_h = CHART_W - MARGIN_L - MARGIN_R, CHART_H - MARGIN_T - MARGIN_B
    top = _nice_ceiling(max((sum(p.seconds for p in d.phases) for d in history), default=1.0))
    slot = plot_w / max(len(history), 1)
    bar_w = max(4.0, min(42.0, slot * 0.7))
    out = [
        f'<svg id="history-chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="drill durations over time">'
    ]
    out += _axes(top, plot_w, plot_h)
    for index, drill in enumerate(history):
        x = MARGIN_L + slot * index + (slot - bar_w) / 2
        out.append(_bar(drill, x, bar_w, top, plot_h))
        if len(history) <= 16 or index % max(1, len(history) // 12) == 0:
            label_x, label_y = x + bar_w / 2, MARGIN_T + plot_h + 14
            out.append(
                f'<text x="{label_x:.1f}" y="{label_y}" font-size="10" text-anchor="end" fill="#475569" '
                f'transform="rotate(-35 {label_x:.1f} {label_y})">{_e(drill.started_at.strftime("%m-%d %H:%M"))}</text>'
            )
    out.append(_rto_line(history, slot, top, plot_h))
    out.append("</svg>")
    return "".join(out)


def _rto_line(history: Sequence[DrillReport], slot: float, top: float, plot_h: float) -> str:
    """A dark line through each drill's RTO, so a slowly growing restore time is visible."""
    points = [
        (MARGIN_L + slot * index + slot / 2, MARGIN_T + plot_h - plot_h * drill.rto_seconds / top)
        for index, drill in enumerate(history)
        if drill.rto_seconds is not None
    ]
    if not points:
        return ""
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#0f172a"/>' for x, y in points)
    return f'<g id="rto-line"><polyline points="{path}" fill="none" stroke="#0f172a" stroke-width="1.5"/>{dots}</g>'


def _axes(top: float, plot_w: float, plot_h: float) -> list[str]:
    out = []
    for step in range(5):
        value = top * step / 4
        y = MARGIN_T + plot_h - plot_h * step / 4
        out.append(
            f'<line x1="{MARGIN_L}" y1="{y:.1f}" x2="{MARGIN_L + plot_w}" y2="{y:.1f}" stroke="#e2e8f0"/>'
            f'<text x="{MARGIN_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#475569">'
            f"{value:g} s</text>"
        )
    out.append(
        f'<line x1="{MARGIN_L}" y1="{MARGIN_T}" x2="{MARGIN_L}" y2="{MARGIN_T + plot_h}" stroke="#94a3b8"/>'
    )
    return out


def _bar(drill: DrillReport, x: float, width: float, top: float, plot_h: float) -> str:
    base = MARGIN_T + plot_h
    total = sum(p.seconds for p in drill.phases)
    title = f"{drill.started_at:%Y-%m-%d %H:%M} — {'passed' if drill.ok else 'FAILED'}, {total:.1f} s" + (
        f", RTO {drill.rto_seconds:.1f} s" if drill.rto_seconds is not None else ""
    )
    out = [
        f'<g class="drill" data-drill="{_e(drill.id)}" data-ok="{str(drill.ok).lower()}"><title>{_e(title)}</title>'
    ]
    y = base
    for phase in drill.phases:
        height = plot_h * phase.seconds / top
        y -= height
        color = PHASE_COLORS.get(phase.name, "#64748b")
        out.append(
            f'<rect class="phase" data-phase="{_e(phase.name)}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{max(height, 0.5):.1f}" fill="{color}"/>'
        )
    if not drill.ok:
        cx, cy = x + width / 2, y - 9
        out.append(
            f'<path d="M{cx - 5:.1f},{cy - 5:.1f} L{cx + 5:.1f},{cy + 5:.1f} M{cx + 5:.1f},{cy - 5:.1f} '
            f'L{cx - 5:.1f},{cy + 5:.1f}" stroke="#dc2626" stroke-width="2.5"/>'
        )
    out.append("</g>")
    return "".join(out)


def _nice_ceiling(value: float) -> float:
    """A round axis maximum above ``value`` (1, 2, 5 × 10^n)."""
    value = max(value, 1.0)
    magnitude = 10 ** len(str(int(value)))  # > value
    for factor in (0.1, 0.2, 0.25, 0.5, 1.0):
        if magnitude * factor >= value:
            return magnitude * factor
    return float(magnitude)


def _verify_section(report: DrillReport) -> str:
    if not report.verify_summary:
        return ""
    s = report.verify_summary
    errors = "".join(f"<li>{_e(e)}</li>" for e in report.verify_errors)
    return (
        f'<h2>Verification</h2><p id="verify">{s.get("error", 0)} error(s), {s.get("warning", 0)} warning(s), '
        f"{s.get('info', 0)} info finding(s) on the restored database.</p>"
        + (f"<ul>{errors}</ul>" if errors else "")
    )


def _compare_section(report: DrillReport) -> str:
    if report.equal is None:
        return ""
    s = report.compare_summary
    rows = s.get("rows_database", 0)
    if report.equal:
        verdict = (
            f"equal to the snapshot: all {rows} rows of {s.get('tables', 0)} tables and every sequence match"
        )
    else:
        verdict = (
            f"DIFFERS from the snapshot: {s.get('missing', 0)} missing, {s.get('extra', 0)} extra, "
            f"{s.get('changed', 0)} changed row(s)"
        )
    items = "".join(f"<li>{_e(d)}</li>" for d in report.compare_differences)
    return (
        f'<h2>Fidelity</h2><p id="compare">The restored database is {_e(verdict)} '
        "(compared row by row, <code>verify --against</code>).</p>" + (f"<ul>{items}</ul>" if items else "")
    )


def _smoke_section(report: DrillReport) -> str:
    smoke = report.smoke
    if smoke is None:
        return ""
    steps = "".join(f'<tr><td>{_e(k)}</td><td class="num">{v:.2f}</td></tr>' for k, v in smoke.steps.items())
    return (
        '<h2>Letta server smoke test</h2><p id="smoke">'
        f"The real Letta server started on the restored database in {smoke.server_start_seconds:.1f} s, listed "
        f"{smoke.agents_listed} agents ({smoke.agents_in_snapshot} in the snapshot), read agent "
        f"<code>{_e(smoke.agent_name)}</code>'s {smoke.memory_blocks} memory blocks and {smoke.messages} messages, "
        f"and answered a new message with {smoke.reply_messages} message(s).</p>"
        f"<table><tr><th>API step</th><th>seconds</th></tr>{steps}</table>"
    )


def _embedded_json(report: DrillReport) -> str:
    data = json.dumps(report.model_dump(mode="json"), indent=1).replace("</", "<\\/")
    return f'<script type="application/json" id="drill-report">{data}</script>'
