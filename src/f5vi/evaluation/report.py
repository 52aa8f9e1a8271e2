"""``f5vi eval``'s outputs: ``results.csv`` (one row per utterance and configuration), ``results.json``
(rows, aggregates, configurations, models) and ``report.html``: one self-contained file (inline SVG
histograms, inline CSS, no script, no CDN) with the aggregates side by side and their differences."""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path

from f5vi.evaluation.runner import ConfigRun, Row

COLORS = ("#2563eb", "#ea580c")
"""Blue for the first configuration, orange for the compared one."""

METRICS = (
    ("cer", "CER (character error rate)", "lower is better"),
    ("wer", "WER (syllable error rate)", "lower is better"),
    ("speaker_similarity", "Speaker similarity to the reference", "higher is better"),
    ("rtf", "Real-time factor (synthesis s / audio s)", "lower is better"),
    ("duration_seconds", "Duration (s)", ""),
)

SUMMARY_ROWS = (
    ("succeeded", "utterances synthesised"),
    ("cer_mean", "CER, mean"),
    ("cer_median", "CER, median"),
    ("wer_mean", "WER, mean"),
    ("speaker_similarity_mean", "speaker similarity, mean"),
    ("audio_seconds", "audio, s"),
    ("synthesis_seconds", "synthesis, s (sum of jobs)"),
    ("rtf", "RTF (synthesis / audio)"),
    ("attempts_per_chunk", "samplings per chunk"),
    ("failed_chunks", "chunks failing verification"),
)


def write_reports(out_dir: Path, runs: list[ConfigRun], *, list_source: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / "results.csv",
        "json": out_dir / "results.json",
        "html": out_dir / "report.html",
    }
    names = [f.name for f in fields(Row)]
    with paths["csv"].open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for run in runs:
            for row in run.rows:
                writer.writerow(asdict(row))
    document = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "list": list_source,
        "demo": is_demo(runs),
        "configs": [
            {
                "name": r.config.name,
                "overrides": r.config.overrides,
                "engine": r.engine,
                "wall_seconds": r.wall_seconds,
                "summary": r.summary(),
            }
            for r in runs
        ],
        "differences": differences(runs) if len(runs) == 2 else None,
        "rows": [asdict(row) for run in runs for row in run.rows],
    }
    paths["json"].write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    paths["html"].write_text(render_html(runs, list_source=list_source), encoding="utf-8")
    return paths


def is_demo(runs: list[ConfigRun]) -> bool:
    return any(r.engine.get(k) for r in runs for k in ("demo_model", "demo_asr", "demo_speaker"))


def differences(runs: list[ConfigRun]) -> dict[str, float | None]:
    """Second configuration minus the first, for every numeric aggregate."""
    first, second = runs[0].summary(), runs[1].summary()
    out: dict[str, float | None] = {}
    for key, value in first.items():
        other = second.get(key)
        if isinstance(value, int | float) and isinstance(other, int | float):
            out[key] = round(other - value, 4)
    return out


# ---------------------------------------------------------------------------------------- HTML
def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def histogram_svg(series: list[tuple[str, list[float]]], title: str, note: str, bins: int = 20) -> str:
    """Overlaid histograms of one metric, one colour per configuration, as an inline SVG."""
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    width, height, left, bottom, top = 460, 220, 40, 30, 28
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
        f'<text x="{width - 8}" y="16" font-size="11" text-anchor="end" fill="#666">{_e(note)}</text>',
    ]
    if not values:
        parts.append(f'<text x="{left}" y="{height / 2}" font-size="12" fill="#666">no data</text></svg>')
        return "".join(parts)
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    step = (high - low) / bins
    counts = [[0] * bins for _ in series]
    for s, (_, vs) in enumerate(series):
        for v in vs:
            if v is None or not math.isfinite(v):
                continue
            counts[s][min(int((v - low) / step), bins - 1)] += 1
    peak = max(max(c) for c in counts) or 1
    plot_w, plot_h = width - left - 10, height - top - bottom
    bar_w = plot_w / bins
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>'
    )
    for s, c in enumerate(counts):
        share = bar_w / len(series)
        for b, count in enumerate(c):
            if not count:
                continue
            h = plot_h * count / peak
            x = left + b * bar_w + s * share
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(share - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{COLORS[s % 2]}" opacity="0.85"><title>{_e(series[s][0])}: '
                f"{count} in [{low + b * step:.3g}, {low + (b + 1) * step:.3g})</title></rect>"
            )
    for frac in (0.0, 0.5, 1.0):
        x = left + plot_w * frac
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle">'
            f"{low + (high - low) * frac:.3g}</text>"
        )
    parts.append(f'<text x="{left - 6}" y="{top + 10}" font-size="11" text-anchor="end">{peak}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def category_svg(runs: list[ConfigRun]) -> str:
    """Mean CER per category, bars side by side per configuration."""
    summaries = [r.summary()["cer_by_category"] for r in runs]
    cats = sorted({c for s in summaries for c in s})
    width, row_h, left = 460, 22, 90
    height = 30 + row_h * max(len(cats), 1)
    peak = max([v for s in summaries for v in s.values() if v is not None] + [1e-9])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="CER by category">',
        '<text x="4" y="16" font-size="13" font-weight="600">Mean CER by category</text>',
    ]
    for i, cat in enumerate(cats):
        y = 26 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end">{_e(cat)}</text>')
        for s, summary in enumerate(summaries):
            value = summary.get(cat)
            if value is None:
                continue
            w = (width - left - 60) * value / peak
            parts.append(
                f'<rect x="{left}" y="{y + s * (row_h / len(runs)) + 1:.1f}" width="{w:.1f}" '
                f'height="{row_h / len(runs) - 2:.1f}" fill="{COLORS[s % 2]}"/>'
                f'<text x="{left + w + 4:.1f}" y="{y + s * (row_h / len(runs)) + 9:.1f}" '
                f'font-size="9">{value:.3g}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111;
max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.demo{background:#fee2e2;border:2px solid #dc2626;color:#7f1d1d;padding:10px 14px;border-radius:6px;
font-weight:600;margin:12px 0}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f3f4f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
.better{color:#15803d} .worse{color:#b91c1c} .grid{display:flex;flex-wrap:wrap;gap:12px}
.chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.fail{color:#b91c1c} small{color:#555}
"""

_LOWER_IS_BETTER = {"cer_mean", "cer_median", "wer_mean", "rtf", "synthesis_seconds", "attempts_per_chunk"}
_HIGHER_IS_BETTER = {"speaker_similarity_mean", "succeeded"}


def _delta_cell(key: str, delta: float | None) -> str:
    if delta is None:
        return '<td class="n">–</td>'
    css = ""
    if delta and key in _LOWER_IS_BETTER:
        css = "better" if delta < 0 else "worse"
    elif delta and key in _HIGHER_IS_BETTER:
        css = "better" if delta > 0 else "worse"
    return f'<td class="n {css}">{delta:+.4g}</td>'


def render_html(runs: list[ConfigRun], *, list_source: str) -> str:
    compare = len(runs) == 2
    summaries = [r.summary() for r in runs]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>f5vi eval report</title><style>",
        CSS,
        "</style></head><body>",
        "<h1>f5vi eval report</h1>",
        f"<small>{_e(datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC'))} · list: {_e(list_source)} · "
        f"{len(runs[0].rows)} utterances</small>",
    ]
    if is_demo(runs):
        out.append(
            "<div class='demo'>DEMO: random-weight models (the TTS model produces noise; the speech "
            "recogniser and the speaker model are tiny random ones where flagged below). Every figure "
            "here shows that the tool runs, not how good anything sounds; every verified chunk fails.</div>"
        )
    out.append(
        "<h2>Configurations</h2><table><tr><th></th><th>configuration</th><th>model</th>"
        "<th>device / dtype</th><th>NFE</th><th>EPSS</th><th>verify</th><th>ASR</th><th>speaker</th>"
        "<th>wall s</th></tr>"
    )
    for i, run in enumerate(runs):
        e = run.engine
        limits = (
            f" (CER ≤ {_fmt(e.get('verify_max_cer'))}, ≤ {_fmt(e.get('verify_max_attempts'))} tries)"
            if e.get("verify")
            else ""
        )
        demo = lambda flag: " <b class='fail'>(DEMO)</b>" if flag else ""  # noqa: E731
        out.append(
            f"<tr><td><span class='chip' style='background:{COLORS[i % 2]}'></span></td>"
            f"<td>{_e(run.config.label())}</td><td>{_e(e.get('model'))}{demo(e.get('demo_model'))}</td>"
            f"<td>{_e(e.get('device'))} / {_e(e.get('dtype'))}</td><td class='n'>{_e(e.get('nfe_step'))}</td>"
            f"<td>{_e(e.get('use_epss'))}</td><td>{_e(e.get('verify'))}"
            f"{_e(limits)}"
            f"</td><td>{_e(e.get('asr_model'))}{demo(e.get('demo_asr'))}</td>"
            f"<td>{_e(e.get('speaker_model'))}{demo(e.get('demo_speaker'))}</td>"
            f"<td class='n'>{_fmt(run.wall_seconds)}</td></tr>"
        )
    out.append("</table>")

    out.append("<h2>Aggregates</h2><table><tr><th>metric</th>")
    out += [f"<th>{_e(r.config.name)}</th>" for r in runs]
    if compare:
        out.append(f"<th>Δ ({_e(runs[1].config.name)} − {_e(runs[0].config.name)})</th>")
    out.append("</tr>")
    deltas = differences(runs) if compare else {}
    for key, label in SUMMARY_ROWS:
        out.append(f"<tr><td>{_e(label)}</td>")
        out += [f"<td class='n'>{_fmt(s.get(key))}</td>" for s in summaries]
        if compare:
            out.append(_delta_cell(key, deltas.get(key)))
        out.append("</tr>")
    out.append("</table>")

    out.append("<h2>Distributions</h2><div class='grid'>")
    for key, title, note in METRICS:
        series = [
            (r.config.name, [getattr(row, key) for row in r.rows if getattr(row, key) is not None])
            for r in runs
        ]
        out.append(histogram_svg(series, title, note))
    out.append(category_svg(runs))
    out.append("</div>")

    out.append("<h2>Utterances</h2><table><tr><th>id</th><th>category</th><th>voice</th><th>text</th>")
    for r in runs:
        name = _e(r.config.name)
        out.append(f"<th>CER {name}</th><th>sim {name}</th><th>dur {name}</th><th>tries {name}</th>")
    if compare:
        out.append("<th>Δ CER</th>")
    out.append(f"<th>transcript ({_e(runs[-1].config.name)})</th></tr>")
    for i, row in enumerate(runs[0].rows):
        cells = [row.id, row.category, row.voice]
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells))
        out.append(f"<td>{_e(row.text)}</td>")
        for r in runs:
            other = r.rows[i]
            if other.status != "succeeded":
                out.append(f"<td colspan='4' class='fail'>{_e(other.error or 'failed')}</td>")
                continue
            out.append(
                f"<td class='n'>{_fmt(other.cer)}</td><td class='n'>{_fmt(other.speaker_similarity)}</td>"
                f"<td class='n'>{_fmt(other.duration_seconds)}</td><td class='n'>{_fmt(other.attempts)}</td>"
            )
        if compare:
            a, b = runs[0].rows[i].cer, runs[1].rows[i].cer
            out.append(_delta_cell("cer_mean", None if a is None or b is None else round(b - a, 4)))
        out.append(f"<td><small>{_e(runs[-1].rows[i].transcript)}</small></td></tr>")
    out.append("</table></body></html>")
    return "".join(out)
