"""The embedded default for one machine: broker, Prometheus and a supervisor of processes."""
