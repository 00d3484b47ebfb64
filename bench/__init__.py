"""`make bench`: the system measured against PostgreSQL's own cost of the same work, in one run (`python -m bench`).

The run starts the real processes of the dev profile (`bench/Procfile.bench`: granian, Celery
worker and beat, one Kafka consumer per context; in the celery relay mode also
`bench/Procfile.relay-celery`) once per outbox relay mode, drives them over HTTP like clients would
(`bench.load`), counts what a confirmed order costs in CPU and Kafka messages (`bench.cost`,
`bench.cputime`), measures PostgreSQL's own throughput and CPU on the same tables with pgbench
(`bench.ceiling`), and writes `bench/results.json`, `bench/latency.png` and a table (`bench.report`).
"""
