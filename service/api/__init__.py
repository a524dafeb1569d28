"""HTTP layer: request/response schemas and routes. Routes translate; pipelines do the work."""
