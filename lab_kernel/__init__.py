"""The lab's shared kernel: settings (`.env`), the topology catalogue (`topologies.toml`) and the
endpoints contract (`.lab/endpoints.json` and its schema). Every tool reads these through here,
and this package imports nothing of the lab's other packages."""
