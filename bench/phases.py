"""The phases of `python -m bench` that load the running system (`bench/run.py` orders them): placement
and the saga after it, the listing, the latency at a steady rate with the memory soak, and the memory
figures of a run.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from bench import load, profile
from bench.cost import BacklogWatch
from bench.processes import OUT, MemorySampler
from bench.system import (
    ALL_CONTEXTS,
    OPEN,
    best_window_rate,
    explain_listing,
    say,
    stats,
    steady_rate,
    wait_no_backlog,
    wait_settled,
    without_samples,
)

LOAD_GENERATOR = "bench (load generator)"
# Backlog sampling during the latency phase, and the messages per order assumed when the cost phase
# did not run (about what an order delivered on 2026-12-04: 8 events to 3-5 groups each).
BACKLOG_EVERY = 15.0
DELIVERIES_PER_ORDER_GUESS = 30


def run_placement(args, base_url, clients, results, sampler) -> None:
    tag = load.run_tag()
    say(f"placement: {len(clients)} clients for {args.duration}s")
    sampler.mark("placement")
    profiler = profile.start(sampler.watched, seconds=args.duration, out=OUT) if args.profile else None
    placed = asyncio.run(load.closed_loop_orders(base_url, clients, args.duration, tag))
    if profiler:
        results["profile"] = profile.finish(profiler, out=OUT)
    results["placement"] = {
        "accepted": len(placed.accepted),
        "seconds": placed.seconds,
        "accepted_per_second": len(placed.accepted) / placed.seconds,
        "responses": placed.status_counts,
        "request_latency_ms": stats(placed.latencies_ms),
        "errors": placed.errors[:5],
    }
    say(f"placement: {results['placement']['accepted_per_second']:.1f} accepted/s {placed.status_counts}")
    ids = [order.order_id for order in placed.accepted]
    sent = {order.order_id: order.sent_at for order in placed.accepted}
    states, waited = wait_settled(ids, timeout=max(120, args.duration * 4))
    confirmed = [(pk, ts.timestamp()) for pk, (status, ts) in states.items() if status == "ORDER_CONFIRMED"]
    rate, window_start = best_window_rate([t for _, t in confirmed], 30.0)
    first_sent = min(sent.values()) if sent else None
    results["saga"] = {
        "orders": len(ids),
        "confirmed": len(confirmed),
        "rejected": sum(1 for status, _ in states.values() if status == "REJECTED"),
        "still_open": sum(1 for status, _ in states.values() if status in OPEN),
        "drain_seconds_after_placement": waited,
        "confirmed_per_second": rate,
        "best_window_starts_after_first_post_s": (window_start - first_sent) if window_start and first_sent else None,
        "window_s": 30,
        "end_to_end_under_overload_ms": stats([(t - sent[pk]) * 1000 for pk, t in confirmed]),
        "limited_by_offered_load": rate >= 0.95 * results["placement"]["accepted_per_second"],
    }
    say(f"saga: {rate:.1f} confirmed/s over the best 30 s ({len(confirmed)} of {len(ids)} confirmed)")


def run_light_latency(args, base_url, clients, results) -> None:
    """The same measure at a rate below the system's capacity: what one order costs without queueing."""
    say(f"latency below capacity: {args.light_rate:g} orders/s for {args.light_seconds}s")
    light = without_samples(steady_rate(base_url, clients, args.light_rate, args.light_seconds))
    results["latency_light"] = light
    say(
        f"latency at {args.light_rate:g}/s: end-to-end p50 {light['end_to_end_ms']['p50'] or 0:.0f} / "
        f"p99 {light['end_to_end_ms']['p99'] or 0:.0f} ms"
    )


def run_latency(args, base_url, clients, sampler, *, deliveries_per_order: float | None) -> tuple[dict, dict]:
    """Orders at `args.rate` for `args.soak` seconds (also the memory soak), the backlog sampled
    meanwhile; the phase's figures (with its samples) and its summary (`latency_50`)."""
    say(f"latency + soak: {args.rate:g} orders/s for {args.soak}s")
    sampler.mark("soak start")
    soak_started = time.time()
    watch = BacklogWatch(every=BACKLOG_EVERY)
    watch.start()
    try:
        phase = steady_rate(base_url, clients, args.rate, args.soak)
    finally:
        watch.stop()
    phase["soak_window"] = [soak_started, soak_started + phase["seconds"]]
    sampler.mark("soak end")
    backlog = watch.summary(threshold=args.rate * (deliveries_per_order or DELIVERIES_PER_ORDER_GUESS))
    backlog["drain_after_load_s"] = wait_no_backlog(timeout=300, contexts=ALL_CONTEXTS)["waited_s"]
    e2e, client = phase["end_to_end_ms"], phase["client_observed_ms"]
    summary = {
        "rate": args.rate,
        "seconds": phase["seconds"],
        "orders": phase["orders"],
        "confirmed": e2e["count"],
        "p50_ms": e2e["p50"],
        "p95_ms": e2e["p95"],
        "p99_ms": e2e["p99"],
        "client_p50_ms": client["p50"],
        "client_p99_ms": client["p99"],
        "responses": phase["responses"],
        "backlog_grew": backlog["grew"],
        "backlog": backlog,
        "how": "POST /api/orders sent (client wall clock) → the ORDER_CONFIRMED commit (orders.updated_at)",
    }
    say(
        f"latency: end-to-end p50 {e2e['p50'] or 0:.0f} / p99 {e2e['p99'] or 0:.0f} ms; client p50 "
        f"{client['p50'] or 0:.0f} / p99 {client['p99'] or 0:.0f} ms; backlog grew: {backlog['grew']} "
        f"(max {backlog['max']}, drained {backlog['drain_after_load_s']:.0f}s after the load)"
    )
    return phase, summary


def run_listing(args, base_url, clients, results) -> None:
    from django.apps import apps

    # The listing's own latency, not the burst's backlog: notices and audit entries of the placement
    # phase are written first (bounded wait, recorded).
    backlog = wait_no_backlog(timeout=300, contexts=ALL_CONTEXTS)
    say(f"listing: {args.listing_requests} requests, {args.listing_concurrency} at a time")
    listed = asyncio.run(load.listing(base_url, clients, args.listing_requests, args.listing_concurrency))
    end = datetime.now(UTC).date() - timedelta(days=40)
    plans = explain_listing(clients[0].customer_id, end - timedelta(days=30), end)
    (OUT / "explain-listing.txt").write_text("\n\n".join(f"-- {k}\n{v}" for k, v in plans.items()) + "\n")
    order = apps.get_model("orders", "Order")
    total = order.objects.using("orders").count()
    results["listing"] = {
        "requests": len(listed.latencies_ms),
        "concurrency": args.listing_concurrency,
        "orders_in_table": total,
        "responses": listed.status_counts,
        "latency_ms": stats(listed.latencies_ms),
        "uses_idx_orders_customer_date": all("idx_orders_customer_date" in plan for plan in plans.values()),
        "explain": plans,
        "errors": listed.errors[:5],
        "backlog_before": backlog,
    }
    say(f"listing: p99 {results['listing']['latency_ms']['p99'] or 0:.1f} ms over {total:,} orders")


def memory_results(sampler: MemorySampler, latency: dict | None, *, limit: float) -> dict:
    memory = {
        "peak_rss_mb": {k: round(v, 1) for k, v in sampler.peak_total.items()},
        "peak_single_rss_mb": {k: round(v, 1) for k, v in sampler.peak_single.items()},
    }
    window = (latency or {}).get("soak_window")
    if window:
        start, end = window
        start += 0.2 * (end - start)  # the first fifth warms caches and connection pools
        tree_growth = {name: sampler.growth_mb_per_minute(name, start, end) for name in sampler.series}
        tree_growth = {k: round(v, 2) for k, v in tree_growth.items() if v is not None}
        growth, growing_pid, steady, uss_growth = {}, {}, {}, {}
        for name in sampler.series:
            found = sampler.process_growth_mb_per_minute(name, start, end)
            if found is not None:
                growth[name], growing_pid[name], steady[name] = round(found[0], 2), found[1], found[2]
            found = sampler.process_growth_mb_per_minute(name, start, end, uss=True)
            if found is not None:
                uss_growth[name] = round(found[0], 2)
        seconds = int(window[1] - window[0])
        # The load generator keeps every latency sample by design; it is the instrument, not the system.
        judged = {k: v for k, v in growth.items() if k != LOAD_GENERATOR}
        worst = max(judged.items(), key=lambda item: item[1], default=(None, 0.0))
        # Growing without bound: a slope past the limit, and rising through every quarter of the window
        # (one allocation, however large, rises in one quarter and then stays).
        growing = sorted(k for k, v in judged.items() if v > limit and steady[k])
        bounded = None if seconds < 120 else not growing
        summary = f"worst process: {worst[0]} (pid {growing_pid.get(worst[0])}) {worst[1]:+.2f} MB/min"
        if worst[0] is not None and worst[1] > limit and not steady[worst[0]]:
            summary += ", in one step (not rising through the soak)"
        if bounded is None:
            summary += " (soak < 120 s: not conclusive; run --soak 300)"
        memory["soak"] = {
            "seconds": seconds,
            "judged_on": "each process that lived through the soak, after its first fifth: anonymous memory (what "
            f"it allocated: heap, arenas, stacks) slope over {limit} MB/min and rising through each of the "
            "window's four quarters (median above the one before)",
            "growth_mb_per_minute": growth,
            "uss_growth_mb_per_minute": uss_growth,
            "rising_through_the_soak": {k: v for k, v in steady.items() if k != LOAD_GENERATOR},
            "growing_without_bound": growing,
            "tree_growth_mb_per_minute": tree_growth,
            "bounded": bounded,
            "summary": summary,
        }
    memory["series_mb"] = {
        name: [
            [round(t - sampler.series[name][0][0], 1), round(v, 1)] for t, v in points[:: max(1, len(points) // 300)]
        ]
        for name, points in sampler.series.items()
    }
    memory["marks"] = sampler.marks
    return memory
