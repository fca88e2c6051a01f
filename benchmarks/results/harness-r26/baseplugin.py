"""Harness plugin (round 26 helper): the couchcore clients run from the tree of commit
5835f94 (/tmp/h26/base: git archive of HEAD before this round's transport changes, same
built extensions), named '<client>@base', interleaved with the working tree's."""
import sys
from benchmarks import clients

BASE = "/tmp/h26/base"


def _from_base():
    if "couchcore" not in sys.modules:
        sys.path.insert(0, BASE)
    assert sys.modules.get("couchcore") is None or sys.modules["couchcore"].__file__.startswith(BASE)


class CouchcoreBase(clients.Couchcore):
    def connect(self, ctx):
        _from_base()
        super().connect(ctx)
        import couchcore
        assert couchcore.__file__.startswith(BASE), couchcore.__file__


class CouchcoreTornadoBase(clients.CouchcoreTornado):
    async def connect(self, ctx):
        _from_base()
        await super().connect(ctx)
        import couchcore
        assert couchcore.__file__.startswith(BASE), couchcore.__file__


for b in ("urllib3", "pycurl"):
    clients.register(f"couchcore-{b}@base", CouchcoreBase, {"backend": b})
clients.register("couchcore-tornado@base", CouchcoreTornadoBase)
