"""Operators' view as code: Prometheus recording and alert rules, the Grafana dashboard, and the
proof that every query they run returns data from the service's real metrics."""
