"""What the HTTP routes share: the registry of the app. The data plane itself (limits, batcher,
metrics) is ``service.dataplane``, outside the HTTP layer."""

from __future__ import annotations

from fastapi import Request

from service.registry import ModelRegistry


def registry_of(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry
