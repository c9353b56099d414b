"""The experiment of issue #7: report, order story, capacity preview, and the reproduction verdict.

- `python -m report build [--run DIR | --start T [--end T]]` (make report): `reports/<run>/report.md`
  with plots (Prometheus), the article's actual success rate and the order ledger (CloudWatch
  Logs, the courier's DynamoDB table, the queues), duplicates, latency, prediction vs measurement,
  configuration; `report.json` beside it with the headline numbers.
- `python -m report story <correlation_id>` (make story ID=...): one order's log lines, in order.
- `python -m report preview [--profile P]` (make preview): where the deployed configuration cannot
  hold, by arithmetic (`capacity`), and the profile played out in time (`simulate`).
- `python -m report experiment` (make experiment): smoke load on both topologies, drain, report;
  exit 0 only when the article is reproduced.

Modules: `capacity` (pure model), `simulate` (pure, event by event) and `config_sources` (their inputs); `logs`, `aws_state`,
`collect`, `ledger` (the measurement); `prom`, `panels`, `figures` (metrics and plots);
`render`, `build`, `verdict`, `experiment`, `runs`, `endpoints`.
"""
