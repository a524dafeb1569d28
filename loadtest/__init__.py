"""Load test (locust, SLO gate) and API fuzzing (schemathesis) against a local service."""
