"""What `make bench` reports of an order's cost: CPU and messages per confirmed order, the ratio to
PostgreSQL's own CPU for the same saga, the latency at 50/s with whether a backlog grew, each relay
mode side by side, and a clear word when a mode could not be measured."""

import pytest

pytest.importorskip("psutil")
cost = pytest.importorskip("bench.cost")
processes = pytest.importorskip("bench.processes")
report = pytest.importorskip("bench.report")
run = pytest.importorskip("bench.run")


def snapshot(at, cpu, produced, delivered, load_generator=0.0, postgres=None):
    return cost.Snapshot(
        at=at,
        cpu=cpu,
        load_generator_cpu=load_generator,
        produced=produced,
        delivered=delivered,
        postgres=postgres or {},
    )


def test_the_cost_is_the_windows_cpu_and_messages_divided_by_the_confirmed_orders():
    before = snapshot(
        0,
        {"web": 10.0, "service:postgres": 100.0},
        {"brokage.orders": 500},
        {"orders": 400},
        postgres={"orders": {"commits": 1000, "rows_written": 5000}},
    )
    after = snapshot(
        70,
        {"web": 14.0, "service:postgres": 106.0},
        {"brokage.orders": 2100, "brokage.assets": 800},
        {"orders": 2000, "audit": 3200},
        load_generator=2.0,
        postgres={"orders": {"commits": 2600, "rows_written": 9000}, "assets": {"commits": 400, "rows_written": 2000}},
    )
    figures = cost.cost_figures(before, after, confirmed=400, method="cgroup v1 cpuacct.usage")
    assert figures["cpu"]["ms_per_order"] == pytest.approx(25.0)  # (4 + 6) s over 400 orders
    assert figures["cpu"]["by_process"] == {"service:postgres": pytest.approx(15.0), "web": pytest.approx(10.0)}
    assert list(figures["cpu"]["by_process"]) == ["service:postgres", "web"]  # the largest first
    assert figures["cpu"]["load_generator_ms_per_order"] == pytest.approx(5.0)
    assert figures["events"]["per_order"] == pytest.approx((1600 + 800) / 400)  # a topic new in the window counts
    assert figures["events"]["deliveries_per_order"] == pytest.approx((1600 + 3200) / 400)
    assert figures["postgres_work"]["commits_per_order"] == pytest.approx((1600 + 400) / 400)
    assert figures["postgres_work"]["rows_written_per_order"] == pytest.approx((4000 + 2000) / 400)
    assert figures["postgres_work"]["by_database"]["assets"] == {"commits": 1.0, "rows_written": 5.0}
    assert cost.cost_figures(before, after, confirmed=0, method="x")["cpu"]["ms_per_order"] is None


def test_a_backlog_grew_when_the_last_third_of_the_samples_sits_above_the_first_third():
    watch = cost.BacklogWatch()
    watch.samples = [(15.0 * n, 40 + 10 * (n % 2), 0) for n in range(9)]  # level, with batches
    assert watch.summary(threshold=1500)["grew"] is False
    watch.samples = [(15.0 * n, 1000 * n, 200 * n) for n in range(9)]  # climbing all along
    assert watch.summary(threshold=1500)["grew"] is True
    watch.samples = []
    assert watch.summary(threshold=1500)["grew"] is None


def test_the_celery_mode_without_its_procfile_says_what_is_missing(tmp_path):
    assert processes.procfiles_for("thread", tmp_path / "Procfile.relay-celery") == (processes.PROCFILE,)
    with pytest.raises(processes.MissingProcfile, match=r"Procfile\.relay-celery is missing"):
        processes.procfiles_for("celery", tmp_path / "Procfile.relay-celery")
    (tmp_path / "Procfile.relay-celery").write_text("relay-orders: celery -A brokage worker -Q outbox.orders\n")
    files = processes.procfiles_for("celery", tmp_path / "Procfile.relay-celery")
    assert "relay-orders" in processes.read_procfile(*files) and "web" in processes.read_procfile(*files)


def test_the_default_relay_mode_is_measured_first():
    assert run.relay_modes("both", "celery") == ["celery", "thread"]
    assert run.relay_modes("both", "thread") == ["thread", "celery"]
    assert run.relay_modes("celery", "thread") == ["celery"]


def mode(ms_per_order, p50, p99, grew):
    return {
        "status": "ran",
        "cpu": {"rate": 30, "ms_per_order": ms_per_order, "by_process": {"service:kafka": 6.1, "web": 4.8}},
        "events": {"per_order": 8.0, "deliveries_per_order": 31.0},
        "postgres_work": {"commits_per_order": 11.0, "rows_written_per_order": 30.5},
        "latency_50": {"rate": 50, "seconds": 300, "p50_ms": p50, "p99_ms": p99, "backlog_grew": grew},
        "latency": {"rate": 50, "end_to_end_ms": {"p50": p50}, "client_observed_ms": {}, "samples_end_to_end_ms": []},
        "memory": {"soak": {"summary": "worst process: web +0.4 MB/min", "bounded": True}, "peak_rss_mb": {}},
    }


def results_of(relay: dict) -> dict:
    results = {
        "targets": run.TARGETS,
        "relay": relay,
        "ceiling": {
            "cpu_ms_per_order": 1.6,
            "placement": {"tps": 7784.0},
            "saga": {"tps": 1348.0},
            "saga_paced": {"rate": 30.0, "clients": 4, "tps": 30.0, "cpu_ms_per_order": 3.25},
        },
        "postgres": {"synchronous_commit": "on"},
        "saga": {"confirmed_per_second": 187.0},
    }
    run.ratios_to_ceiling(results)
    run.lift_default_mode(results)
    return results


def test_the_table_shows_each_relay_modes_cost_and_latency_against_the_targets():
    results = results_of(
        {
            "default": "thread",
            "modes": ["thread", "celery"],
            "thread": mode(27.5, 25.0, 148.0, False),
            "celery": mode(12.0, 70.0, 400.0, True),
        }
    )
    assert results["cpu"]["ratio_to_ceiling"] == pytest.approx(27.5 / 1.6)  # the default mode at the top level
    assert results["latency_50"]["p99_ms"] == 148.0
    assert results["relay"]["celery"]["cpu"]["ratio_to_ceiling"] == pytest.approx(7.5)
    assert "samples_end_to_end_ms" not in results["relay"]["celery"]["latency"]
    assert results["saga"]["ratio_to_ceiling"] == pytest.approx(187.0 / 1348.0)

    table = report.table(results)
    main = {row[0]: row[1:] for row in report.rows(results)}
    cpu_row = next(value for name, value in main.items() if name.startswith("CPU of every process"))
    assert cpu_row == ("27.50 ms per order = 17.2 × the ceiling's 1.60 ms", "≤ 8 × ceiling", "FAIL")
    latency_row = next(value for name, value in main.items() if name.startswith("latency POST→ORDER_CONFIRMED at 50"))
    assert latency_row[0] == "p50 25.0 / p99 148.0 ms, no backlog growing" and latency_row[2] == "PASS"
    saga_row = next(value for name, value in main.items() if name.startswith("saga"))
    assert saga_row[1:] == ("reference", "")  # no longer pass/fail
    assert "| per relay mode | relay thread (default) | relay celery | target |" in table
    assert "12.00 ms per order = 7.5 × the ceiling's 1.60 ms PASS" in table
    assert "p50 70.0 / p99 400.0 ms, backlog grew FAIL" in table
    assert "8.00 / 31.00" in table  # messages produced / delivered per order
    assert "| PostgreSQL synchronous_commit (orders database) | on |" in table
    assert "| PostgreSQL commits / rows written per order | 11.0 / 30.5 | 11.0 / 30.5 |" in table
    assert "| PostgreSQL's CPU per saga with pgbench paced at 30/s (4 clients) | 3.25 ms | reference |" in table


def test_a_mode_that_could_not_run_says_why_in_its_column():
    missing = "not run: Procfile.relay-celery is missing (bench/)"
    results = results_of(
        {
            "default": "celery",
            "modes": ["celery", "thread"],
            "celery": {"status": missing},
            "thread": mode(20.0, 30.0, 150.0, False),
        }
    )
    assert results["relay"]["top_level"] == "thread"  # the default could not run: the measured one stands in
    assert results["cpu"]["ms_per_order"] == 20.0
    table = report.table(results)
    assert f"| CPU per confirmed order | {missing} | 20.00 ms per order" in table
