"""``couchcore build-view DB_URL VIEW``: build a view's index and wait for it, with a progress bar.

Runs :meth:`couchcore.Database.build_view`. Exit status: 0 when the index is built, 1 when
``--timeout`` expired first (the server goes on building; run it again to wait more), 2
when it could not run (bad URL or arguments, unreachable server, wrong credentials, missing
database or view, a map function that fails), 130 when interrupted (Ctrl-C; the server goes on
building); each error is one line starting ``couchcore build-view:``. Credentials come from the URL or from
``COUCHDB_USER``/``COUCHDB_PASSWORD``. The bar shows the percentage CouchDB reports in
``/_active_tasks`` (admin only); where the server reports none it shows the time waited.
A view of a partitioned design document is built through one partition of each shard range
(CouchDB indexes each shard on its own and answers such a view only through
``/{db}/_partition/{p}/...``: https://docs.couchdb.org/en/stable/partitioned-dbs/index.html).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]

_PROG = "couchcore build-view"  # the start of every error line, as "couchcore load:" / "couchcore dump:"


def add_parser(sub: Any) -> None:
    """Register ``build-view`` on an ``add_subparsers()`` object (sets ``run=`` :func:`run`)."""
    p = sub.add_parser(
        "build-view", help="build a view's index and wait until it is built (progress bar)",
        description="Build the index of VIEW in DB_URL (query it until CouchDB answers whole) and wait for it, "
                    "with a progress bar. A view of a partitioned design document (the default in a partitioned "
                    "database) is built through one partition of each shard range. Exit status: 0 built, "
                    "1 --timeout expired first (the server goes on building: run it again to wait more), "
                    "2 could not run (bad URL or arguments, unreachable server, rejected credentials, missing "
                    "database or view, a failing map function), 130 interrupted (Ctrl-C; the server goes on building).")
    p.add_argument("db_url", help="database URL, e.g. http://admin:pw@127.0.0.1:5984/mydb "
                                  "(or credentials from COUCHDB_USER/COUCHDB_PASSWORD)")
    p.add_argument("view", help="the view: ddoc/view or _design/ddoc/_view/view")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up after S seconds (exit 1; the server goes on building); default: no limit")
    p.add_argument("--poll", type=float, default=1.0, metavar="S", help="progress every S seconds (1)")
    p.add_argument("--backend", default="urllib3", choices=["urllib3", "pycurl"], help="HTTP backend (urllib3)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=run)


class _Bar:
    """A tqdm bar in percent when the server reports progress, else a counter of seconds."""

    def __init__(self, name: str, quiet: bool) -> None:
        self.bar: Any = None
        self.name = name
        self.quiet = quiet

    def _open(self) -> Any:
        """The bar, drawn at the first progress report (not before: a view name or option
        refused before anything is sent prints its one line alone)."""
        if self.bar is None and not self.quiet:
            try:
                from tqdm import tqdm
            except ImportError:  # pragma: no cover - tqdm comes with the cli (and dev) extra
                self.quiet = True
                return None
            self.bar = tqdm(total=100.0, unit="%", desc=f"building {self.name}", file=sys.stderr,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}")
        return self.bar

    def __call__(self, status: dict[str, Any]) -> None:
        if self._open() is None:
            return
        percent = status.get("percent")
        if percent is not None:
            self.bar.n = float(percent)
            self.bar.set_postfix_str(
                f"{status.get('changes_done')}/{status.get('total_changes')} changes" if status.get("total_changes")
                else "", refresh=False)
        else:
            self.bar.set_postfix_str("progress not reported by the server", refresh=False)
        self.bar.refresh()

    def close(self, done: bool) -> None:
        if done:
            self._open()
        if self.bar is not None:
            if done:
                self.bar.n = 100.0
                self.bar.refresh()
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    """Run ``couchcore build-view``: 0 when the index is built, 1 on ``--timeout``, 2 when it
    could not run (bad URL, unreachable server, missing view), 130 on Ctrl-C; errors are one
    line on stderr starting ``couchcore build-view:``."""
    from .cli import _env_auth
    from .errors import CouchcoreError, IndexBuildTimeout
    from ._sync import Database
    from ._urls import redact_url

    try:
        db = Database(args.db_url, auth=_env_auth(args.db_url), backend=args.backend)
    except CouchcoreError as exc:
        print(f"{_PROG}: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    bar = _Bar(args.view, args.quiet)
    try:
        out = db.build_view(args.view, timeout=args.timeout, progress=bar, poll=args.poll)
    except IndexBuildTimeout as exc:
        bar.close(False)
        print(f"{_PROG}: {redact_url(str(exc))}", file=sys.stderr)
        return 1
    except CouchcoreError as exc:
        bar.close(False)
        print(f"{_PROG}: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.close(False)
        print(f"{_PROG}: interrupted (the server goes on building)", file=sys.stderr)
        return 130
    bar.close(True)
    if not args.quiet:
        print(f"built {args.view} in {out['elapsed']:.1f} s ({out['attempts']} queries)", file=sys.stderr)
    return 0
