"""One measurement in a fresh interpreter: ``python -m benchmarks.child SPEC_JSON``.

SPEC: ``{"client", "scenario", "ctx", "plugin"?}``. Prints one JSON line: ``status`` ("ok",
"wrong", "error", "n/a"), ``reason``, ``wall_s``, ``cpu_s`` (user + system, all threads,
``getrusage(RUSAGE_SELF)``, over the timed call only), ``peak_rss_mb`` (``VmHWM``: the
process's own high-water mark; ``ru_maxrss`` is reported too but on Linux it carries the
parent's high-water mark across ``exec``), ``rss_before_mb`` (after imports and connecting,
before the timed call), what the client returned and what was expected, and the library
versions and couchcore variant (row parser, codec) actually in effect.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import re
import resource
import sys
import time
import traceback
from typing import Any


def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def redact(text: str) -> str:
    """Remove credentials from URLs in ``text``."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)


def load_plugin(path: str | None) -> None:
    if not path:
        return
    spec = importlib.util.spec_from_file_location("benchmarks_plugin", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks_plugin"] = module
    spec.loader.exec_module(module)


def missing_requirement(requires: tuple[str, ...]) -> str | None:
    for name in requires:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def measure(spec: dict) -> dict[str, Any]:
    from . import clients, data

    load_plugin(spec.get("plugin"))
    name, scenario, ctx = spec["client"], spec["scenario"], dict(spec["ctx"])
    ctx["scenario"] = scenario
    if name not in clients.REGISTRY:
        return {"status": "n/a", "reason": f"unknown client {name!r}"}
    cls, options, env, only = clients.REGISTRY[name]
    missing = missing_requirement(cls.requires)
    if missing:
        return {"status": "n/a", "reason": f"not installed ({missing})"}
    method_name = scenario
    if getattr(cls, method_name, None) is None or (only is not None and scenario not in only):
        return {"status": "n/a", "reason": f"{name} cannot do {scenario}"}
    if "gets" in ctx:
        ctx["ids"] = data.gets_ids(*ctx.pop("gets"))
    client = cls(**options)
    method = getattr(client, method_name)
    out: dict[str, Any] = {}
    loop = asyncio.new_event_loop() if cls.is_async else None
    try:
        if loop is not None:
            loop.run_until_complete(client.connect(ctx))
        else:
            client.connect(ctx)
        rss_before = _status_kb("VmRSS")
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if loop is not None:
            result = loop.run_until_complete(method(ctx))
        else:
            result = method(ctx)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        out.update(wall_s=wall, cpu_s=(ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
                   peak_rss_mb=_status_kb("VmHWM"), rss_before_mb=rss_before,
                   ru_maxrss_mb=ru1.ru_maxrss / 1024, result=result)
    finally:
        try:
            if loop is not None:
                loop.run_until_complete(client.close())
                loop.close()
            else:
                client.close()
        except Exception:  # noqa: BLE001 - closing is not measured
            pass
    if out.get("peak_rss_mb") is None:
        out["peak_rss_mb"] = out.get("ru_maxrss_mb")
    # what is actually in effect (an env switch that is not honoured must not pass as a variant)
    if "couchcore" in sys.modules:
        import couchcore.codec
        import couchcore._rows

        out["rows_backend"] = couchcore._rows.BACKEND
        out["codec"] = getattr(couchcore.codec, "ENGINE", None)
    if cls.dist:
        try:
            out["version"] = importlib.metadata.version(cls.dist)
        except importlib.metadata.PackageNotFoundError:
            out["version"] = None
    # the correctness guard, after the clock stopped (hashes of str depend on the process)
    expected = data.expected(scenario, ctx["size"], ctx.get("ids"))
    out["expected"] = expected
    problems = []
    result = out["result"] if isinstance(out["result"], dict) else {}
    if result.get("count") != expected["count"]:
        problems.append(f"count {result.get('count')!r}, expected {expected['count']}")
    if cls.checks == "full" and "digest" in expected and result.get("digest") != expected["digest"]:
        problems.append("checksum of ids/keys differs")
    if result.get("failed"):
        problems.append(f"{result['failed']} documents reported failed")
    want_rows = env.get("COUCHCORE_ROWS_BACKEND")
    if want_rows and out.get("rows_backend") != want_rows:
        problems.append(f"row parser {out.get('rows_backend')!r} in effect, not {want_rows!r}")
    want_codec = env.get("COUCHCORE_JSON")
    if want_codec and out.get("codec") != want_codec:
        return {**out, "status": "n/a", "reason": f"COUCHCORE_JSON={want_codec} not in effect (codec {out.get('codec')!r})"}
    out["status"] = "wrong" if problems else "ok"
    out["reason"] = "; ".join(problems)
    return out


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    try:
        out = measure(spec)
    except Exception as exc:  # noqa: BLE001 - any failure of the client is a result
        tb = traceback.format_exc(limit=-3)
        out = {"status": "error", "reason": redact(f"{type(exc).__name__}: {exc}")[:300],
               "traceback": redact(tb)[-2000:]}
    print(json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
