"""The results: `bench/results.json`, the printed table, and the latency histogram `bench/latency.png`."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _fmt(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}{unit}"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("PASS" if ok else "FAIL")


def cpu_ok(cpu: dict, targets: dict) -> bool | None:
    ratio = cpu.get("ratio_to_ceiling")
    return None if ratio is None else ratio <= targets["cpu_ratio_to_ceiling"]


def latency_ok(latency_50: dict, targets: dict) -> bool | None:
    if latency_50.get("p50_ms") is None:
        return None
    ok = latency_50["p50_ms"] <= targets["latency_p50_ms"] and latency_50["p99_ms"] <= targets["latency_p99_ms"]
    return ok and latency_50.get("backlog_grew") is not True


def cpu_value(cpu: dict, ceiling_ms: float | None) -> str:
    if cpu.get("ms_per_order") is None:
        return "—"
    value = f"{_fmt(cpu['ms_per_order'], ' ms', 2)} per order"
    if cpu.get("ratio_to_ceiling") is not None:
        value += f" = {_fmt(cpu['ratio_to_ceiling'], digits=1)} × the ceiling's {_fmt(ceiling_ms, ' ms', 2)}"
    return value


def latency_value(latency_50: dict) -> str:
    if latency_50.get("p50_ms") is None:
        return "—"
    grew = {True: "backlog grew", False: "no backlog growing", None: "backlog not sampled"}[
        latency_50.get("backlog_grew")
    ]
    return f"p50 {_fmt(latency_50['p50_ms'])} / p99 {_fmt(latency_50['p99_ms'])} ms, {grew}"


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, verdict) for the table; the per-mode figures are the top-level mode's."""
    out = []
    targets = results["targets"]
    place, saga, lat = results.get("placement", {}), results.get("saga", {}), results.get("latency", {})
    ceiling = results.get("ceiling", {})
    cpu, events, latency_50 = results.get("cpu", {}), results.get("events", {}), results.get("latency_50", {})
    mode = results.get("relay", {}).get("top_level", "—")
    out.append(
        (
            f"CPU of every process and service per confirmed order at {cpu.get('rate', 30):g}/s (relay {mode})",
            cpu_value(cpu, ceiling.get("cpu_ms_per_order")),
            f"≤ {targets['cpu_ratio_to_ceiling']} × ceiling",
            verdict(cpu_ok(cpu, targets)),
        )
    )
    out.append(
        (
            "Kafka messages per confirmed order, produced / delivered to all groups",
            f"{_fmt(events.get('per_order'), digits=2)} / {_fmt(events.get('deliveries_per_order'), digits=2)}",
            "—",
            "",
        )
    )
    out.append(
        (
            f"latency POST→ORDER_CONFIRMED at {latency_50.get('rate', '—')}/s for "
            f"{_fmt(latency_50.get('seconds'), ' s', 0)} (relay {mode})",
            latency_value(latency_50),
            f"p50 ≤ {targets['latency_p50_ms']}, p99 ≤ {targets['latency_p99_ms']} ms, no backlog growing",
            verdict(latency_ok(latency_50, targets)),
        )
    )
    light = results.get("latency_light", {})
    if light:
        light_e2e = light.get("end_to_end_ms", {})
        out.append(
            (
                f"latency POST→ORDER_CONFIRMED at {light.get('rate'):g}/s (below capacity; for reference)",
                f"p50 {_fmt(light_e2e.get('p50'))} / p95 {_fmt(light_e2e.get('p95'))} / "
                f"p99 {_fmt(light_e2e.get('p99'))} ms",
                "—",
                "",
            )
        )
    client = lat.get("client_observed_ms", {})
    out.append(
        (
            f"POST /api/orders answer (201) during the {lat.get('rate', '—')}/s phase",
            f"p50 {_fmt(client.get('p50'))} / p95 {_fmt(client.get('p95'))} / p99 {_fmt(client.get('p99'))} ms",
            "—",
            "",
        )
    )
    listing = results.get("listing", {})
    p99 = listing.get("latency_ms", {}).get("p99")
    uses_index = listing.get("uses_idx_orders_customer_date")
    out.append(
        (
            f"listing p99 ({_fmt(listing.get('orders_in_table'), digits=0)} orders, "
            f"{listing.get('concurrency', '—')} client)",
            f"{_fmt(p99)} ms; EXPLAIN uses idx_orders_customer_date: {uses_index}",
            f"≤ {targets['listing_p99_ms']} ms",
            verdict(None if p99 is None else p99 <= targets["listing_p99_ms"] and bool(uses_index)),
        )
    )
    archival = results.get("archival", {})
    if archival.get("status") == "ran":
        ok = archival["rows_per_second"] >= targets["archival_rows_per_second"]
        ok = ok and archival["peak_rss_mb"] < targets["archival_peak_mb"]
        value = f"{_fmt(archival['rows_per_second'], digits=0)} rows/s, peak {_fmt(archival['peak_rss_mb'])} MB"
    else:
        ok, value = None, archival.get("status", "not run")
    out.append(
        (
            "archival (archive_orders over 1,000,000 eligible)",
            value,
            f"≥ {targets['archival_rows_per_second']:,} rows/s, < {targets['archival_peak_mb']} MB",
            verdict(ok),
        )
    )
    soak = results.get("memory", {}).get("soak", {})
    out.append(
        (
            f"memory growth over the {soak.get('seconds', '—')} s soak, per process",
            soak.get("summary", "—"),
            "bounded (no steady growth)",
            verdict(soak.get("bounded")),
        )
    )
    out.append(
        (
            "placement (accepted POST /api/orders/s, 32 clients)",
            f"{_fmt(place.get('accepted_per_second'))}/s = {_fmt(place.get('ratio_to_ceiling'), digits=3)} × ceiling",
            "reference",
            "",
        )
    )
    out.append(
        (
            "saga (orders reaching ORDER_CONFIRMED/s, best 30 s)",
            f"{_fmt(saga.get('confirmed_per_second'))}/s = {_fmt(saga.get('ratio_to_ceiling'), digits=3)} × ceiling",
            "reference",
            "",
        )
    )
    out.append(
        (
            "ceiling: pgbench placement / saga (32 clients); PostgreSQL's CPU per saga",
            f"{_fmt(ceiling.get('placement', {}).get('tps'))} / {_fmt(ceiling.get('saga', {}).get('tps'))} tps; "
            f"{_fmt(ceiling.get('cpu_ms_per_order'), ' ms', 2)}",
            "",
            "",
        )
    )
    paced = ceiling.get("saga_paced") or {}
    if paced:
        out.append(
            (
                f"PostgreSQL's CPU per saga with pgbench paced at {_fmt(paced.get('rate'), digits=0)}/s "
                f"({_fmt(paced.get('clients'), digits=0)} clients)",
                _fmt(paced.get("cpu_ms_per_order"), " ms", 2),
                "reference",
                "",
            )
        )
    out.append(
        (
            "PostgreSQL synchronous_commit (orders database)",
            results.get("postgres", {}).get("synchronous_commit", "—"),
            "on",
            "",
        )
    )
    return out


def mode_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """The per-mode figures side by side: (the modes' headers, rows of measure + one cell per mode + target)."""
    relay = results.get("relay", {})
    modes = [mode for mode in relay.get("modes", []) if isinstance(relay.get(mode), dict)]
    targets = results["targets"]
    ceiling_ms = results.get("ceiling", {}).get("cpu_ms_per_order")
    headers = [f"relay {mode}" + (" (default)" if mode == relay.get("default") else "") for mode in modes]
    measured = [relay[mode] for mode in modes]

    def cell(mode_results: dict, render) -> str:
        if mode_results.get("status") != "ran":
            return mode_results.get("status", "—")
        return render(mode_results)

    def cpu_cell(m: dict) -> str:
        cpu = m.get("cpu", {})
        return f"{cpu_value(cpu, ceiling_ms)} {verdict(cpu_ok(cpu, targets))}"

    def latency_cell(m: dict) -> str:
        latency_50 = m.get("latency_50", {})
        return f"{latency_value(latency_50)} {verdict(latency_ok(latency_50, targets))}"

    def events_cell(m: dict) -> str:
        events = m.get("events", {})
        return f"{_fmt(events.get('per_order'), digits=2)} / {_fmt(events.get('deliveries_per_order'), digits=2)}"

    def postgres_cell(m: dict) -> str:
        work = m.get("postgres_work") or {}
        return f"{_fmt(work.get('commits_per_order'), digits=1)} / {_fmt(work.get('rows_written_per_order'), digits=1)}"

    def top_processes(m: dict) -> str:
        by_process = m.get("cpu", {}).get("by_process", {})
        return ", ".join(f"{name} {_fmt(ms, digits=1)}" for name, ms in list(by_process.items())[:5]) or "—"

    def memory_cell(m: dict) -> str:
        soak = m.get("memory", {}).get("soak") or {}
        return f"{soak.get('summary', '—')} {verdict(soak.get('bounded'))}"

    table = [
        [
            "CPU per confirmed order",
            *(cell(m, cpu_cell) for m in measured),
            f"≤ {targets['cpu_ratio_to_ceiling']} × ceiling",
        ],
        ["largest CPU shares (ms per order)", *(cell(m, top_processes) for m in measured), ""],
        ["messages per order, produced / delivered", *(cell(m, events_cell) for m in measured), ""],
        ["PostgreSQL commits / rows written per order", *(cell(m, postgres_cell) for m in measured), ""],
        [
            "latency at 50/s for 5 min",
            *(cell(m, latency_cell) for m in measured),
            f"p50 ≤ {targets['latency_p50_ms']}, p99 ≤ {targets['latency_p99_ms']} ms",
        ],
        ["memory over the soak", *(cell(m, memory_cell) for m in measured), "bounded"],
    ]
    return headers, table


def table(results: dict) -> str:
    lines = ["| measure | value | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(results)]
    headers, per_mode = mode_rows(results)
    if headers:
        lines += ["", f"| per relay mode | {' | '.join(headers)} | target |", "|---" * (len(headers) + 2) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in per_mode]
    peaks = results.get("memory", {}).get("peak_rss_mb", {})
    if peaks:
        lines += ["", "| process | peak RSS, whole tree (MB) | peak RSS, largest process (MB) |", "|---|---|---|"]
        singles = results["memory"].get("peak_single_rss_mb", {})
        lines += [f"| {name} | {_fmt(peaks[name])} | {_fmt(singles.get(name))} |" for name in sorted(peaks)]
    return "\n".join(lines)


def write_json(results: dict, path: Path = ROOT / "results.json") -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")


def histogram(latency: dict, path: Path = ROOT / "latency.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e2e = latency.get("samples_end_to_end_ms") or []
    client = latency.get("samples_client_ms") or []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=False)
    for ax, samples, title, key in (
        (axes[0], e2e, "POST sent → ORDER_CONFIRMED committed", "end_to_end_ms"),
        (axes[1], client, "POST sent → 201 answer (client)", "client_observed_ms"),
    ):
        if samples:
            upper = max(samples)
            ax.hist(samples, bins=60, range=(0, upper * 1.02), color="#4477aa")
            stats = latency.get(key, {})
            for name, color in (("p50", "#228833"), ("p95", "#ccbb44"), ("p99", "#ee6677")):
                if stats.get(name) is not None:
                    ax.axvline(stats[name], color=color, linestyle="--", label=f"{name} {stats[name]:.0f} ms")
            ax.legend()
        ax.set_title(title)
        ax.set_xlabel("milliseconds")
        ax.set_ylabel("orders")
    fig.suptitle(f"Order latency at a steady {latency.get('rate', '?')} orders/s ({len(e2e)} orders)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
