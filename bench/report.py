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


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, verdict) for the table."""
    out = []
    targets = results["targets"]
    place, saga, lat = results.get("placement", {}), results.get("saga", {}), results.get("latency", {})
    ceiling = results.get("ceiling", {})

    def verdict(ok):
        return "—" if ok is None else ("PASS" if ok else "FAIL")

    ratio = place.get("ratio_to_ceiling")
    out.append(
        (
            "placement (accepted POST /api/orders/s, 32 clients)",
            f"{_fmt(place.get('accepted_per_second'))}/s = {_fmt(ratio, digits=3)} × ceiling",
            f"≥ {targets['placement_ratio']} × ceiling",
            verdict(None if ratio is None else ratio >= targets["placement_ratio"]),
        )
    )
    ratio = saga.get("ratio_to_ceiling")
    out.append(
        (
            "saga (orders reaching ORDER_CONFIRMED/s, best 30 s)",
            f"{_fmt(saga.get('confirmed_per_second'))}/s = {_fmt(ratio, digits=3)} × ceiling",
            f"≥ {targets['saga_ratio']} × ceiling",
            verdict(None if ratio is None else ratio >= targets["saga_ratio"]),
        )
    )
    e2e = lat.get("end_to_end_ms", {})
    client = lat.get("client_observed_ms", {})
    ok = None
    if e2e.get("p50") is not None:
        ok = e2e["p50"] <= targets["latency_p50_ms"] and e2e["p99"] <= targets["latency_p99_ms"]
    out.append(
        (
            f"latency POST→ORDER_CONFIRMED at {lat.get('rate', '—')}/s (commit time)",
            f"p50 {_fmt(e2e.get('p50'))} / p95 {_fmt(e2e.get('p95'))} / p99 {_fmt(e2e.get('p99'))} ms",
            f"p50 ≤ {targets['latency_p50_ms']}, p99 ≤ {targets['latency_p99_ms']} ms",
            verdict(ok),
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
    memory = results.get("memory", {})
    soak = memory.get("soak", {})
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
            "ceiling: pgbench placement / saga (32 clients)",
            f"{_fmt(ceiling.get('placement', {}).get('tps'))} / {_fmt(ceiling.get('saga', {}).get('tps'))} tps",
            "",
            "",
        )
    )
    return out


def table(results: dict) -> str:
    lines = ["| measure | value | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(results)]
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
