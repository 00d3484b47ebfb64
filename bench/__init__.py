"""`make bench`: the system measured against its hardware ceiling, in one run (`python -m bench`).

The run starts the real processes of the dev profile (`bench/Procfile.bench`: granian, Celery
worker and beat, one Kafka consumer per context), drives them over HTTP like clients would
(`bench.load`), measures PostgreSQL's own limit on the same tables with pgbench (`bench.ceiling`),
and writes `bench/results.json`, `bench/latency.png` and a table (`bench.report`).
"""
