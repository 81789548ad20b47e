"""The side-by-side benchmark of issue 8: batchwire, the raw Kafka limit, a Celery chord.

`scripts/bench` (or `python -m bench`) runs every scenario in one go on this machine and
prints one table; `bench/results/<date>.json` keeps the figures.  Modules:

- `profiles`: the sizes of each scenario (`--quick` and the full profile of the issue);
- `services`: the processes the bench starts (Kafka, workers, the connector, Redis);
- `payloads`: the no-op batches and real encoded `ItemRequested` / `ItemResult` bytes;
- `local_http`: a fast tenant API and a webhook receiver on 127.0.0.1;
- `status_watch`: final `BatchStatus`es as they arrive;
- `batchwire_runs`: scenarios (a)-(e) against real batchwire processes;
- `limit`: the same hops with aiokafka alone, no processing;
- `celery_app`, `celery_chord`: the same job as a Celery chord on Redis;
- `stats`, `report`: percentiles, the table, the JSON and the PNG;
- `run`: the command line.
"""
