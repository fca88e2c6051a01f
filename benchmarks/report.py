"""Tables, the JSON file and the charts of a harness run.

Per scenario and size: a Markdown table (median with min-max over the repeats of wall
time, client CPU time and peak RSS; the throughput of the median wall time, also as a ratio
to the raw baseline and to the best peer in the same run), with the machine and the server
beside it and a line per client saying how it was used; ``results.json`` with every measurement; PNG
charts (throughput with min-max whiskers and peak memory per client; for the view
scenario also time and memory against size on log-log axes).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from . import clients as _clients

MB = 1 << 20
COLOURS = {"couchcore": "#1f77b4", "peer": "#ff7f0e", "raw": "#7f7f7f"}


def family(client: str) -> str:
    entry = _clients.REGISTRY.get(client)
    return entry[0].family if entry else "peer"


def units(scenario: Any, size: int) -> float:
    return size / MB if scenario.unit == "MB" else float(size)


def fmt_size(scenario: Any, size: int) -> str:
    return f"{size // MB} MB" if scenario.unit == "MB" else f"{size:,} {scenario.unit}"


def summarise(measurements: list[dict], scenarios: dict[str, Any]) -> list[dict]:
    """One entry per (scenario, size, client), in run order."""
    groups: dict[tuple, list[dict]] = {}
    for m in measurements:
        groups.setdefault((m["scenario"], m["size"], m["client"]), []).append(m)
    out = []
    for (sname, size, client), runs in groups.items():
        scenario = scenarios[sname]
        ok = [r for r in runs if r.get("status") == "ok"]
        bad = [r for r in runs if r.get("status") != "ok"]
        entry: dict[str, Any] = {"scenario": sname, "size": size, "client": client, "family": family(client),
                                 "runs": len(runs), "ok_runs": len(ok), "server": runs[0].get("server"),
                                 "version": next((r.get("version") for r in runs if r.get("version")), None)}
        if bad:
            worst = next((r for r in bad if r["status"] == "wrong"), None) or next(
                (r for r in bad if r["status"] == "error"), bad[0])
            entry["status"] = worst["status"]
            entry["reason"] = worst.get("reason", "")
        else:
            entry["status"] = "ok"
        if ok and not bad:
            n = units(scenario, size)
            walls = [r["wall_s"] for r in ok]
            entry.update(
                wall_median=statistics.median(walls), wall_min=min(walls), wall_max=max(walls),
                cpu_median=statistics.median(r["cpu_s"] for r in ok),
                cpu_min=min(r["cpu_s"] for r in ok), cpu_max=max(r["cpu_s"] for r in ok),
                rss_median=statistics.median(r["peak_rss_mb"] for r in ok),
                rss_min=min(r["peak_rss_mb"] for r in ok), rss_max=max(r["peak_rss_mb"] for r in ok),
            )
            entry["throughput"] = n / entry["wall_median"]
            entry["throughput_min"] = n / entry["wall_max"]
            entry["throughput_max"] = n / entry["wall_min"]
            entry["cpu_per_unit_us"] = entry["cpu_median"] / n * 1e6 if scenario.unit != "MB" else None
            entry["rows_backend"] = ok[0].get("rows_backend")
            entry["codec"] = ok[0].get("codec")
        out.append(entry)
    # ratios within each (scenario, size)
    for entry in out:
        peers = [e for e in out if (e["scenario"], e["size"]) == (entry["scenario"], entry["size"])]
        raw = next((e for e in peers if e["family"] == "raw" and "throughput" in e), None)
        best_peer = max((e for e in peers if e["family"] == "peer" and "throughput" in e),
                        key=lambda e: e["throughput"], default=None)
        if "throughput" in entry:
            entry["vs_raw"] = entry["throughput"] / raw["throughput"] if raw else None
            entry["vs_best_peer"] = entry["throughput"] / best_peer["throughput"] if best_peer else None
            entry["best_peer"] = best_peer["client"] if best_peer else None
    return out


def machine_line(meta: dict, server: str | None) -> str:
    m = meta["machine"]
    mem = f", {m['memory_mb'] / 1024:.0f} GB RAM" if m.get("memory_mb") else ""
    load = meta.get("load_average")
    busy = f" Load average {load[0]:.1f} at the start, {load[1]:.1f} at the end." if load else ""
    return (f"Machine: {m['cpu']}, {m['cores']} cores{mem}, {m['os']}; {m['implementation']} {m['python']}. "
            f"Server: {server or '-'}. Median of {meta['repeat']} runs (min–max), each run a fresh process"
            f"{' (--quick sizes)' if meta.get('quick') else ''}.{busy}")


def _num(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def table(scenario: Any, size: int, entries: list[dict], meta: dict) -> str:
    unit = scenario.unit
    per = "MB/s" if unit == "MB" else f"{unit}/s"
    lines = [f"### {scenario.title}: {fmt_size(scenario, size)}", "",
             machine_line(meta, entries[0].get("server") if entries else None), "",
             f"| client | wall s, median (min–max) | {per} | client CPU s, median (min–max) "
             f"| CPU µs per {unit.rstrip('s') if unit != 'MB' else 'MB'} "
             f"| peak RSS MB, median (min–max) | ÷ raw | ÷ best peer |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    ordered = sorted(entries, key=lambda e: ({"raw": 0, "couchcore": 1, "peer": 2}[e["family"]],
                                             -(e.get("throughput") or 0)))
    for e in ordered:
        name = e["client"] + (f" {e['version']}" if e.get("version") and e["family"] == "peer" else "")
        if e["runs"] < meta.get("repeat", e["runs"]) and e["status"] != "n/a":
            name += f" ({e['runs']} of {meta['repeat']} runs)"
        if e["status"] != "ok":
            label = {"n/a": "n/a", "wrong": "**WRONG RESULT**", "error": "failed"}.get(e["status"], e["status"])
            lines.append(f"| {name} | {label}: {e.get('reason', '')} | | | | | | |")
            continue
        cpu_per = e["cpu_per_unit_us"] if unit != "MB" else e["cpu_median"] / units(scenario, size) * 1e6
        lines.append(
            f"| {name} | {e['wall_median']:.3f} ({e['wall_min']:.3f}–{e['wall_max']:.3f}) "
            f"| {_num(e['throughput'], 1 if unit == 'MB' else 0)} "
            f"| {e['cpu_median']:.3f} ({e['cpu_min']:.3f}–{e['cpu_max']:.3f}) "
            f"| {_num(cpu_per, 2 if cpu_per < 10 else 0)} "
            f"| {e['rss_median']:.0f} ({e['rss_min']:.0f}–{e['rss_max']:.0f}) "
            f"| {_ratio(e.get('vs_raw')) if e['family'] != 'raw' else '1.00×'} | {_ratio(e.get('vs_best_peer'))} |")
    best = next((e.get("best_peer") for e in entries if e.get("best_peer")), None)
    lines += ["", f"Ratios are throughput ratios (higher is better); best peer: {best or 'none succeeded'}. "
              "Peak RSS is the client process's high-water mark (VmHWM), imports included."]
    how = []
    for e in ordered:
        entry = _clients.REGISTRY.get(e["client"])
        if entry and scenario.name in entry[0].how and e["status"] != "n/a":
            variant = " ".join(f"{k}={v}" for k, v in entry[2].items())
            how.append(f"- {e['client']}: `{entry[0].how[scenario.name]}`" + (f" ({variant})" if variant else ""))
    if how:
        lines += ["", "How each client did it:", "", *how]
    return "\n".join(lines) + "\n"


def write_all(out_dir: Path, meta: dict, measurements: list[dict], scenarios: dict[str, Any]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(measurements, scenarios)
    paths = []
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps({"meta": meta, "summary": summary, "measurements": measurements},
                                    indent=1, default=str))
    paths.append(json_path)
    sections = [f"# couchcore benchmark results", "",
                f"`python -m benchmarks run{' --quick' if meta.get('quick') else ''}` "
                f"({meta['started']}, {meta.get('elapsed_s', 0):.0f} s). One section per scenario; "
                "the JSON file has every run.", ""]
    if meta.get("interrupted") is not None:
        sections += [f"**Interrupted** (Ctrl-C) after {meta['interrupted']} runs: the tables hold only the "
                           "runs that finished; a scenario or client missing from them was not reached, and a "
                           "client marked (k of n runs) has a median of fewer runs.", ""]
    for sname in meta["scenarios"]:
        scenario = scenarios[sname]
        sizes = sorted({e["size"] for e in summary if e["scenario"] == sname})
        first = len(sections)
        for size in sizes:
            entries = [e for e in summary if (e["scenario"], e["size"]) == (sname, size)]
            md = table(scenario, size, entries, meta)
            chart = chart_scenario(out_dir, scenario, size, entries)
            if chart is not None:
                md += f"\n![{scenario.title}]({chart.name})\n"
                paths.append(chart)
            sections.append(md)
        if sname == "view_replay" and len(sizes) > 1:
            chart = chart_scaling(out_dir, scenario, [e for e in summary if e["scenario"] == sname])
            if chart is not None:
                sections.append(f"Time and peak memory against rows (log–log):\n\n![view scaling]({chart.name})\n")
                paths.append(chart)
        if len(sections) > first:  # the scenario's own file, next to the combined one
            own = out_dir / f"{sname}.md"
            own.write_text("\n".join(sections[first:]))
            paths.append(own)
    md_path = out_dir / "results.md"
    md_path.write_text("\n".join(sections))
    paths.insert(0, md_path)
    return paths


# -- charts ------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def chart_scenario(out_dir: Path, scenario: Any, size: int, entries: list[dict]) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    ordered = sorted(entries, key=lambda e: ({"raw": 0, "couchcore": 1, "peer": 2}[e["family"]],
                                             -(e.get("throughput") or 0)))
    ordered = [e for e in ordered if e["status"] != "n/a"]
    if not ordered:
        return None
    labels = [e["client"] if e["status"] == "ok" else f"{e['client']} ({'WRONG' if e['status'] == 'wrong' else 'failed'})"
              for e in ordered]
    ys = list(range(len(ordered)))[::-1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.45 * len(ordered) + 2.1), sharey=True, layout="constrained")
    per = "MB/s" if scenario.unit == "MB" else f"{scenario.unit}/s"
    for y, e in zip(ys, ordered):
        colour = COLOURS[e["family"]]
        if e["status"] != "ok":
            ax1.text(0, y, "   no result: " + ("wrong" if e["status"] == "wrong" else "failed"),
                     va="center", fontsize=8, color="#b00")
            continue
        thr = e["throughput"]
        ax1.barh(y, thr, color=colour, height=0.65,
                 xerr=[[thr - e["throughput_min"]], [e["throughput_max"] - thr]], capsize=3, ecolor="black")
        # the value after the whisker's end, so the whisker does not cross it
        ax1.text(e["throughput_max"], y, f"  {thr:,.0f}" if thr >= 100 else f"  {thr:,.1f}", va="center", fontsize=8)
        rss = e["rss_median"]
        ax2.barh(y, rss, color=colour, height=0.65,
                 xerr=[[rss - e["rss_min"]], [e["rss_max"] - rss]], capsize=3, ecolor="black")
        ax2.text(e["rss_max"], y, f"  {rss:,.0f}", va="center", fontsize=8)
    from matplotlib.patches import Patch

    present = [f for f in ("raw", "couchcore", "peer") if any(e["family"] == f for e in ordered)]
    names = {"raw": "raw baseline (no parsing)", "couchcore": "couchcore", "peer": "other clients"}
    # below the axes: inside them it covered the last bars and their figures
    fig.legend(handles=[Patch(color=COLOURS[f], label=names[f]) for f in present], fontsize=8,
               loc="outside lower center", ncol=len(present))
    ax1.set_yticks(ys)
    ax1.set_ylim(-0.6, len(ordered) - 0.4)  # the last row clear of the axis (a "no result" note sat on it)
    ax1.set_yticklabels(labels, fontsize=9)
    ax1.set_xlabel(f"throughput, {per} (median; whiskers min–max)")
    ax2.set_xlabel("peak RSS of the client process, MB")
    for ax in (ax1, ax2):
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.18)
    fig.suptitle(f"{scenario.title}: {fmt_size(scenario, size)}\n{entries[0].get('server') or ''}", fontsize=10)
    path = out_dir / f"{scenario.name}-{size}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def chart_scaling(out_dir: Path, scenario: Any, entries: list[dict]) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    by_client: dict[str, list[dict]] = {}
    for e in entries:
        if e["status"] == "ok":
            by_client.setdefault(e["client"], []).append(e)
    if not by_client:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5.5))
    # couchcore in blues (solid), peers in warm colours (dashed), the raw baseline black (dotted)
    palettes = {"couchcore": ["#08306b", "#2171b5", "#6baed6", "#4292c6", "#9ecae1", "#084594"],
                "peer": ["#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#9467bd"],
                "raw": ["#000000"]}
    styles = {"couchcore": "-", "peer": "--", "raw": ":"}
    counters = {"couchcore": 0, "peer": 0, "raw": 0}
    order = {"raw": 0, "couchcore": 1, "peer": 2}
    for client, points in sorted(by_client.items(), key=lambda kv: (order[family(kv[0])], kv[0])):
        points.sort(key=lambda e: e["size"])
        fam = family(client)
        colour = palettes[fam][counters[fam] % len(palettes[fam])]
        counters[fam] += 1
        xs = [e["size"] for e in points]
        kw: dict[str, Any] = {"marker": "o", "linestyle": styles[fam], "color": colour, "label": client}
        if "/" in client:  # a variant (pure-Python rows, the other codec): told apart from its plain client
            kw.update(linestyle="-.", markerfacecolor="white")
        ax1.plot(xs, [e["wall_median"] for e in points], **kw)
        ax2.plot(xs, [e["rss_median"] for e in points], **kw)
    for ax, label in ((ax1, "wall time, s (median)"), (ax2, "peak RSS, MB (median)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel(label)
        ax.grid(which="both", alpha=0.3)
    ax2.legend(fontsize=8, loc="upper left", ncol=2)
    fig.suptitle(f"{scenario.title}: time and memory against size\n{entries[0].get('server') or ''}", fontsize=10)
    fig.tight_layout()
    path = out_dir / f"{scenario.name}-scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
