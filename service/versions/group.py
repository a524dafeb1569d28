"""The versions of one model name and the routing table over them (swapped whole, atomically)."""

from __future__ import annotations

import random
import threading

from service.metrics import MODEL_MEMORY, TRAFFIC_SHARE, VERSION_INFO, VERSION_STATE
from service.versions.loaded import LoadedModel
from service.versions.routing import Role, RoutingPolicy, build_table, roles
from service.versions.state import STATES, highest, version_key


class VersionGroup:
    """Every loaded (or failed) version of one model name, its policy and routing table."""

    def __init__(self, name: str, policy: RoutingPolicy | None = None) -> None:
        self.name = name
        self.versions: dict[str, LoadedModel] = {}
        self.policy = policy or RoutingPolicy()
        self.table = build_table(self.policy, [])
        self._roles: dict[str, Role] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    def ready(self) -> list[str]:
        return sorted((v for v, m in self.versions.items() if m.state == "ready"), key=version_key)

    def sorted_versions(self) -> list[LoadedModel]:
        return [self.versions[v] for v in sorted(self.versions, key=version_key)]

    # ``versions`` is replaced, never changed in place: readers on the event loop iterate it
    # while loads (in threads) add versions.
    def add(self, model: LoadedModel) -> None:
        with self._lock:
            self.versions = {**self.versions, model.version: model}
        self.refresh()

    def remove(self, version: str) -> None:
        with self._lock:
            self.versions = {v: m for v, m in self.versions.items() if v != version}
        self.refresh()
        for state in STATES:
            if _has(VERSION_STATE, self.name, version, state):
                VERSION_STATE.remove(self.name, version, state)
        for metric in (TRAFFIC_SHARE, MODEL_MEMORY):
            if _has(metric, self.name, version):
                metric.remove(self.name, version)

    def set_policy(self, policy: RoutingPolicy) -> None:
        with self._lock:
            self.policy = policy
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the routing table from the ready versions (one reference swap) and publish
        the versions' states, shares, roles and memory."""
        with self._lock:
            self.table = build_table(self.policy, self.ready())
            table = self.table
            loaded = [v for v, m in self.versions.items() if m.state != "failed"]
            new_roles = roles(table, loaded)
            for version, role in self._roles.items():
                if new_roles.get(version) != role and _has(VERSION_INFO, self.name, version, role):
                    VERSION_INFO.remove(self.name, version, role)
            self._roles = new_roles
            for version, model in self.versions.items():
                for state in STATES:
                    VERSION_STATE.labels(self.name, version, state).set(state == model.state)
                TRAFFIC_SHARE.labels(self.name, version).set(table.share(version))
                MODEL_MEMORY.labels(self.name, version).set(model.memory_bytes)
            for version, role in new_roles.items():
                VERSION_INFO.labels(self.name, version, role).set(1)

    def pick(self, caller: str | None) -> LoadedModel | None:
        """The version a request is routed to (None: no version is ready)."""
        table = self.table  # one read: the request keeps this choice
        version = table.pick(caller, self._rng)
        return None if version is None else self.versions.get(version)

    def shares(self) -> dict[str, float]:
        table = self.table
        return {v: table.share(v) for v in self.versions}

    def role(self, version: str) -> Role | None:
        return self._roles.get(version)

    def primary(self) -> LoadedModel | None:
        """The version that stands for the name (its metadata, ensembles' members): the stable
        version, else the highest ready one, else the highest loaded one."""
        for version, role in self._roles.items():
            if role == "stable" and version in self.versions:
                return self.versions[version]
        ready = self.ready()
        if ready:
            return self.versions[highest(ready)]
        if self.versions:
            return self.versions[highest(list(self.versions))]
        return None


def _has(metric: object, *labels: str) -> bool:
    children = getattr(metric, "_metrics", {})
    return tuple(labels) in children
