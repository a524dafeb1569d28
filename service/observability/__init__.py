"""What operators see of a request: its id, structured log lines, optional OpenTelemetry spans."""
