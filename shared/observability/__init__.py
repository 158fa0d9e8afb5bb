"""Logs, metrics and health probes every service shares."""
