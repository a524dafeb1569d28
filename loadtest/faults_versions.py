"""Fault cases of model versions (``python -m loadtest.faults_versions``; issue 24).

Two services on 127.0.0.1, each on a scratch bundles directory holding ``ner-food`` as version 1
(``<dir>/ner-food/1``, a copy of the default bundle with its manifest's version changed):

- ``swap_watch`` (``INFER_WATCH``): under closed-loop load at c=32 for ``--duration`` seconds,
  version 2 is published (staged, renamed into place) and takes over once ready; then version 1's
  directory is removed and the watch drains and unloads it. 0 errors; every answer names one
  version; per connection the answers never go back from 2 to 1.
- ``swap_admin`` (admin API): the same swap by ``:load?wait=true`` then ``:unload``.
- ``corrupted_version``: a version 3 with a bad sha256, then one failing its self-check, is
  refused with its reason while 2 keeps serving and /readyz stays 200.
- ``unload_under_load``: 1 reloaded, 50/50, unloaded under c=32 load: no request lost.
- ``memory_after_unload``: the server's RSS after loading and unloading a version is within 10%
  of its level before the load.
- ``canary``: 90/10 over 2,000 requests gives 10% ± 2% to the canary; sticky callers stay put.
- ``shadow``: a shadow version at fraction 1.0 records agreement (same graph: all agree).

PASS/FAIL lines as in ``loadtest.faults``; exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtest.faults import KEY, Context, check, metric, run_case
from loadtest.server import DEFAULT_BUNDLES, ROOT, running_service

ADMIN_KEY = "faults-admin-key-0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}
MODEL = "ner-food"
BODY = {"text": "tushar se 2 misal mangwao", "model": MODEL}
ENV = {
    # closed-loop load at c=32 must not be shed: these cases count errors, not admission
    "INFER_SHED_LATE_REQUESTS": "false",
    "INFER_MAX_QUEUE": "4096",
    "INFER_MAX_QUEUE_TOKENS": "100000000",
    "INFER_MAX_TOKENIZING": "1024",
    "INFER_REQUEST_TIMEOUT_S": "60",
    "INFER_ADMIN_KEYS": json.dumps([ADMIN_KEY]),
}


@dataclass
class VersionsContext(Context):
    duration_s: float = 60.0
    concurrency: int = 32
    scratch: Path = Path()
    served_dir: Path = Path()  # the running service's scratch bundles directory


# --- bundles ------------------------------------------------------------------------------------


def publish(source: Path, root: Path, version: str, breakage: str | None = None) -> Path:
    """``root/ner-food/<version>``: a copy of ``source`` with that version, staged in a hidden
    directory and renamed into place (as the export does). ``breakage``: "sha256" (the manifest's
    graph digest changed) or "selfcheck" (its stored sample outputs changed)."""
    target = root / MODEL / version
    staging = root / MODEL / f".{version}.partial"
    shutil.copytree(source, staging)
    manifest = json.loads((staging / "bundle.json").read_text())
    manifest["version"] = version
    if breakage == "sha256":
        manifest["onnx"]["sha256"] = "0" * 64
    if breakage == "selfcheck":  # every graph's sample: a bundle may carry several graphs
        for sample in [
            manifest["selfcheck"],
            *(g["selfcheck"] for g in manifest.get("int8_graphs", [])),
        ]:
            rows = sample["outputs"][0]
            rows[0] = [value + 50.0 for value in rows[0]]
    (staging / "bundle.json").write_text(json.dumps(manifest, indent=2))
    staging.rename(target)
    return target


@contextmanager
def versions_service(ctx: VersionsContext, name: str, **env: str) -> Iterator[Path]:
    """A service on a scratch bundles directory holding ner-food version 1 only."""
    root = ctx.scratch / name
    (root / MODEL).mkdir(parents=True)
    publish(ctx.bundles / MODEL, root, "1")
    with running_service(
        root, ctx.out / f"service-{name}.log", {**ENV, **env}, ready_timeout=300
    ) as service:
        ctx.service = service
        yield root


# --- load ---------------------------------------------------------------------------------------


@dataclass
class Load:
    """Closed-loop load: ``concurrency`` connections, each sending the next request when the
    previous one is answered; per connection, (start time, status, answering version)."""

    base: str
    concurrency: int
    body: dict[str, Any] = field(default_factory=lambda: dict(BODY))
    answers: list[list[tuple[float, int, str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Load:
        self.answers = [[] for _ in range(self.concurrency)]
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        return self

    def answered(self, version: str) -> int:
        return sum(a[2] == version for conn in self.answers for a in list(conn))

    def until_answered(self, version: str, limit_s: float = 120) -> None:
        """Until every connection's worth of answers came from ``version`` (the load is on)."""
        wait_for(lambda: self.answered(version) >= self.concurrency, limit_s,
                 f"no load answered by version {version}")  # fmt: skip

    def finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(120)

    async def _run(self) -> None:
        await asyncio.gather(*(self._connection(i) for i in range(self.concurrency)))

    async def _connection(self, i: int) -> None:
        limits = httpx.Limits(max_connections=1)
        headers = {"X-API-Key": KEY}
        async with httpx.AsyncClient(base_url=self.base, limits=limits, headers=headers) as c:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = await c.post("/v1/entities", json=self.body, timeout=60)
                    version = r.json().get("model", {}).get("version", "") if r.is_success else ""
                    self.answers[i].append((started, r.status_code, str(version)))
                except httpx.HTTPError as exc:
                    self.answers[i].append((started, 0, type(exc).__name__))

    def summary(self, swapped_at: float | None = None) -> dict[str, Any]:
        flat = [a for conn in self.answers for a in conn]
        errors = [a for a in flat if a[1] != 200]
        versions = sorted({a[2] for a in flat if a[1] == 200})
        # per connection: once 2 answered, never 1 again (and none from 1 after the swap)
        backwards = 0
        late = 0
        for conn in self.answers:
            seen_two = False
            for started, _status, version in conn:
                seen_two = seen_two or version == "2"
                backwards += seen_two and version == "1"
                late += swapped_at is not None and started > swapped_at and version == "1"
        return {
            "requests": len(flat),
            "errors": len(errors),
            "error_kinds": sorted({f"{a[1]} {a[2]}" for a in errors})[:5],
            "versions": versions,
            "backwards": backwards,
            "from_1_after_swap": late,
        }


def client(ctx: Context) -> httpx.Client:
    return ctx.client(timeout=300)


def state(ctx: Context) -> dict[str, dict[str, Any]]:
    with client(ctx) as c:
        listing = c.get("/v1/models").json()["versions"]
    return {v["version"]: v for v in listing if v["name"] == MODEL}


def wait_for(what: Callable[[], bool], limit_s: float, message: str) -> float:
    started = time.monotonic()
    while not what():
        check(time.monotonic() - started < limit_s, message)
        time.sleep(0.05)
    return time.monotonic()


def check_swap(figures: dict[str, Any]) -> None:
    check(figures["requests"] > 0, "no request was answered")
    check(figures["errors"] == 0, f"{figures['errors']} errors: {figures['error_kinds']}")
    check(figures["versions"] == ["1", "2"], f"answered by {figures['versions']}")
    check(figures["backwards"] == 0, f"{figures['backwards']} answers went back from 2 to 1")
    check(figures["from_1_after_swap"] == 0, f"{figures['from_1_after_swap']} from 1 after swap")


def ready_only(ctx: Context, version: str) -> Callable[[], bool]:
    def done() -> bool:
        s = state(ctx)
        return list(s) == [version] and s[version]["state"] == "ready"

    return done


def serves(ctx: Context, version: str) -> Callable[[], bool]:
    return lambda: state(ctx).get(version, {}).get("traffic_share") == 1.0


def readyz_during(ctx: Context, stop: threading.Event, codes: list[int]) -> threading.Thread:
    def probe() -> None:
        while not stop.is_set():
            codes.append(httpx.get(ctx.base + "/readyz", timeout=10).status_code)
            time.sleep(0.2)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    return thread


# --- cases --------------------------------------------------------------------------------------


def case_swap_watch(ctx: VersionsContext) -> str:
    with versions_service(ctx, "watch", INFER_WATCH="true", INFER_WATCH_INTERVAL_S="1") as root:
        load = Load(ctx.base, ctx.concurrency).start()
        stop, codes = threading.Event(), list[int]()
        probe = readyz_during(ctx, stop, codes)
        started = time.monotonic()
        time.sleep(ctx.duration_s / 4)
        load.until_answered("1")
        publish(ctx.bundles / MODEL, root, "2")
        swapped = wait_for(serves(ctx, "2"), 120, "version 2 never took the traffic")
        time.sleep(ctx.duration_s / 4)
        shutil.rmtree(root / MODEL / "1")
        wait_for(ready_only(ctx, "2"), 120, "version 1 was never unloaded")
        time.sleep(max(0.0, started + ctx.duration_s - time.monotonic()))
        load.finish()
        stop.set()
        probe.join()
    figures = load.summary(swapped)
    figures |= {"swap_after_s": round(swapped - started, 1), "readyz": sorted(set(codes))}
    ctx.figures["swap_watch"] = figures
    check_swap(figures)
    check(figures["readyz"] == [200], f"/readyz answered {figures['readyz']}")
    return f"{figures['requests']} requests at c={ctx.concurrency}, 0 errors, monotone; {figures}"


def admin_cases(ctx: VersionsContext, results: dict[str, bool], only: set[str]) -> None:
    """swap_admin, then the cases that build on its state (2 serving), on one service without
    the watch."""
    with versions_service(ctx, "admin") as root:
        ctx.served_dir = root
        for name, case in ADMIN_CASES:
            if not only or name in only:
                run_case(ctx, name, case, results)  # type: ignore[arg-type]


def admin(ctx: Context, method: str, path: str, body: Any = None) -> httpx.Response:
    with httpx.Client(base_url=ctx.base, headers=ADMIN, timeout=300) as c:
        return c.request(method, f"/v1/admin/models/{MODEL}{path}", json=body)


def swap_admin(ctx: VersionsContext) -> str:
    publish(ctx.bundles / MODEL, ctx.served_dir, "2")
    load = Load(ctx.base, ctx.concurrency).start()
    stop, codes = threading.Event(), list[int]()
    probe = readyz_during(ctx, stop, codes)
    started = time.monotonic()
    time.sleep(ctx.duration_s / 4)
    load.until_answered("1")
    loaded = admin(ctx, "POST", "/versions/2:load?wait=true").json()
    check(loaded["state"] == "ready", f"version 2: {loaded}")
    swapped = wait_for(serves(ctx, "2"), 30, "version 2 never took the traffic")
    time.sleep(ctx.duration_s / 4)
    unloaded = admin(ctx, "POST", "/versions/1:unload")
    check(unloaded.status_code == 200, f"unload 1: {unloaded.status_code} {unloaded.text}")
    time.sleep(max(0.0, started + ctx.duration_s - time.monotonic()))
    load.finish()
    stop.set()
    probe.join()
    figures = load.summary(swapped)
    figures |= {"swap_after_s": round(swapped - started, 1), "readyz": sorted(set(codes))}
    ctx.figures["swap_admin"] = figures
    check_swap(figures)
    check(figures["readyz"] == [200], f"/readyz answered {figures['readyz']}")
    check(list(state(ctx)) == ["2"], f"loaded: {list(state(ctx))}")
    return f"{figures['requests']} requests at c={ctx.concurrency}, 0 errors, monotone; {figures}"


def answered_versions(ctx: Context, n: int, **headers: str) -> list[str]:
    with client(ctx) as c:
        out = []
        for _ in range(n):
            r = c.post("/v1/entities", json=BODY, headers=headers)
            check(r.status_code == 200, f"{r.status_code} {r.text}")
            out.append(r.json()["model"]["version"])
        return out


def corrupted_version(ctx: VersionsContext) -> str:
    reasons = {}
    for breakage in ("sha256", "selfcheck"):
        directory = publish(ctx.bundles / MODEL, ctx.served_dir, "3", breakage)
        loaded = admin(ctx, "POST", "/versions/3:load?wait=true").json()
        check(loaded["state"] == "failed", f"{breakage}: {loaded}")
        reasons[breakage] = loaded["reason"]
        check(set(answered_versions(ctx, 20)) == {"2"}, "version 2 stopped serving")
        check(httpx.get(ctx.base + "/readyz").status_code == 200, "/readyz turned unready")
        shutil.rmtree(directory)
    with client(ctx) as c:
        text = c.get("/metrics").text
    counted = {
        k: metric(text, "infer_model_load_failures_total", model=MODEL, version="3", reason=k)
        for k in ("sha256", "selfcheck")
    }
    ctx.figures["corrupted_version"] = {"reasons": reasons, "counted": counted}
    check("sha256" in reasons["sha256"], reasons["sha256"])
    check("self-check failed" in reasons["selfcheck"], reasons["selfcheck"])
    check(counted == {"sha256": 1.0, "selfcheck": 1.0}, f"load failures {counted}")
    return f"both refused with their reason, 2 kept serving: {reasons}"


def rss_mb(ctx: Context) -> float:
    assert ctx.service is not None
    status = Path(f"/proc/{ctx.service.pid}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kb / 1024


def unload_under_load(ctx: VersionsContext) -> str:
    check(admin(ctx, "POST", "/versions/1:load?wait=true").json()["state"] == "ready", "load 1")
    admin(ctx, "PUT", "/routing", {"weights": {"1": 50, "2": 50}})
    load = Load(ctx.base, ctx.concurrency).start()
    time.sleep(min(10.0, ctx.duration_s / 4))
    load.until_answered("1")
    unloaded = admin(ctx, "POST", "/versions/1:unload")
    time.sleep(2)
    load.finish()
    figures = load.summary()
    ctx.figures["unload_under_load"] = figures
    check(unloaded.status_code == 200, f"unload: {unloaded.status_code} {unloaded.text}")
    check(figures["errors"] == 0, f"{figures['errors']} errors: {figures['error_kinds']}")
    check(figures["versions"] == ["1", "2"], f"answered by {figures['versions']}")
    return f"{figures['requests']} requests, 0 lost, 1 unloaded while half the traffic was its"


def memory_after_unload(ctx: VersionsContext) -> str:
    time.sleep(1)
    before = rss_mb(ctx)
    loaded = admin(ctx, "POST", "/versions/1:load?wait=true").json()
    during = rss_mb(ctx)
    check(admin(ctx, "POST", "/versions/1:unload").status_code == 200, "unload 1")
    time.sleep(1)
    after = rss_mb(ctx)
    figures = {
        "rss_before_mb": round(before, 1),
        "rss_loaded_mb": round(during, 1),
        "rss_after_mb": round(after, 1),
        "version_memory_mb": loaded["memory_mb"],
    }
    ctx.figures["memory_after_unload"] = figures
    check(after <= before * 1.10, f"RSS {after:.0f} MB after unload > 110% of {before:.0f} MB")
    return f"RSS {before:.0f} → {during:.0f} (loaded) → {after:.0f} MB (unloaded); {figures}"


def canary(ctx: VersionsContext) -> str:
    check(admin(ctx, "POST", "/versions/1:load?wait=true").json()["state"] == "ready", "load 1")
    put = admin(ctx, "PUT", "/routing", {"weights": {"2": 90, "1": 10}})
    check(put.status_code == 200, put.text)
    picks: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        got = answered_versions(ctx, n)
        with lock:
            picks.extend(got)

    threads = [threading.Thread(target=worker, args=(250,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    share = picks.count("1") / len(picks)
    sticky = {"weights": {"1": 50, "2": 50}, "sticky_header": "x-caller-id"}
    check(admin(ctx, "PUT", "/routing", sticky).status_code == 200, "sticky policy")
    callers = {f"caller-{i}": set(answered_versions(ctx, 5, **{"x-caller-id": f"caller-{i}"}))
               for i in range(40)}  # fmt: skip
    moved = [c for c, seen in callers.items() if len(seen) != 1]
    on_one = sum(seen == {"1"} for seen in callers.values())
    ctx.figures["canary"] = {
        "requests": len(picks),
        "canary_share": round(share, 4),
        "sticky_callers": len(callers),
        "sticky_moved": len(moved),
        "sticky_on_1": on_one,
    }
    check(len(picks) == 2000, f"{len(picks)} answers")
    check(abs(share - 0.10) <= 0.02, f"canary share {share:.3f}")
    check(not moved, f"callers that changed version: {moved}")
    check(0 < on_one < len(callers), f"{on_one} of {len(callers)} callers on version 1")
    return f"canary share {share:.3f} of 2,000; 40 sticky callers x 5 stayed put ({on_one} on 1)"


def shadow(ctx: VersionsContext) -> str:
    policy = {"shadow": {"version": "1", "fraction": 1.0}}
    check(admin(ctx, "PUT", "/routing", policy).status_code == 200, "shadow policy")
    with client(ctx) as c:
        before = c.get("/metrics").text
    served = answered_versions(ctx, 200)
    time.sleep(3)
    with client(ctx) as c:
        after = c.get("/metrics").text

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    figures = {
        outcome: delta("infer_shadow_comparisons_total", model=MODEL, version="1", outcome=outcome)
        for outcome in ("agree", "disagree")
    }
    figures["dropped"] = delta("infer_shadow_dropped_total", model=MODEL, version="1")
    figures["errors"] = delta("infer_shadow_errors_total", model=MODEL, version="1")
    ctx.figures["shadow"] = figures
    check(set(served) == {"2"}, f"answered by {set(served)}: a shadow answer was returned")
    check(figures["agree"] + figures["dropped"] == 200, f"compared {figures}")
    check(figures["disagree"] == 0 and figures["errors"] == 0, f"{figures}")
    return f"200 served by 2, shadow 1: {figures}"


ADMIN_CASES: list[tuple[str, Callable[[VersionsContext], str]]] = [
    ("swap_admin", swap_admin),
    ("corrupted_version", corrupted_version),
    ("unload_under_load", unload_under_load),
    ("memory_after_unload", memory_after_unload),
    ("canary", canary),
    ("shadow", shadow),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "faults")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of load per swap (issue: 60)"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    only = {n for n in args.only.split(",") if n}
    results: dict[str, bool] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "keys.txt"
        key_file.write_text(f"{KEY}\n")
        ENV["INFER_API_KEYS_FILE"] = str(key_file)
        ctx = VersionsContext(None, args.bundles, ROOT, args.out, key_file)
        ctx.duration_s, ctx.concurrency, ctx.scratch = args.duration, args.concurrency, Path(tmp)
        if not only or "swap_watch" in only:
            run_case(ctx, "swap_watch", case_swap_watch, results)  # type: ignore[arg-type]
        if not only or only & {n for n, _ in ADMIN_CASES}:
            admin_cases(ctx, results, only)
    failed = [n for n, ok in results.items() if not ok]
    (args.out / "faults_versions.json").write_text(json.dumps(ctx.figures, indent=1) + "\n")
    print(json.dumps(ctx.figures, indent=1))
    print(
        f"version fault cases: {len(results) - len(failed)}/{len(results)} passed in "
        f"{time.monotonic() - started:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
