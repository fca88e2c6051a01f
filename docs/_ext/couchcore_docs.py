"""Sphinx additions of couchcore's docs.

* ``.. status-exception-table::`` renders the HTTP status → exception table from
  :mod:`couchcore.errors`' own mapping (``error_for_status`` and the table it reads), so the
  page cannot disagree with what the library raises.
* A ``missing-reference`` resolver for the short names couchcore's docstrings use
  (``:class:`InvalidInput```, ``:meth:`stop```, a quoted forward reference in an annotation):
  it links them to the one documented object of that name — in the referring class or module
  first — and leaves them unresolved (a warning, an error under ``-W``) when there is none or
  more than one. The internal bases of the facades (``couchcore._api.ServerAPI`` /
  ``DatabaseAPI``, ``couchcore._sync``) link to the public classes. A name with no page
  of its own (an internal module or function, an instance attribute, an inherited member
  documented on the base) is rendered as code without a link, but only after checking
  that it exists in the code: a reference to a renamed or removed name still fails the build.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _first_line(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


class StatusExceptionTable(SphinxDirective):
    """A list-table: status, exception class (linked), what it means (its docstring's first paragraph)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from couchcore import errors

        mapping = dict(errors._BY_STATUS)  # the table error_for_status reads
        for status, cls in mapping.items():  # what the table says is what error_for_status does
            if errors.error_for_status(status) is not cls:
                raise self.error(f"couchcore.errors: error_for_status({status}) disagrees with its table")
        rows = [(str(status), cls) for status, cls in sorted(mapping.items())]
        # the fall-backs, read from error_for_status itself (a status outside the table)
        other_5xx = next(s for s in range(599, 499, -1) if s not in mapping)
        other_4xx = next(s for s in range(499, 399, -1) if s not in mapping)
        rows.append(("any other 5xx", errors.error_for_status(other_5xx)))
        rows.append(("any other status ≥ 400", errors.error_for_status(other_4xx)))
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 15 25 60",
            "",
            "   * - status",
            "     - exception",
            "     - meaning",
        ]
        for status, cls in rows:
            lines += [
                f"   * - {status}",
                f"     - :class:`~{cls.__module__}.{cls.__qualname__}`",
                f"     - {_first_line(cls) or '—'}",
            ]
        node = nodes.container()
        self.state.nested_parse(StringList(lines, source="couchcore.errors"), self.content_offset, node)
        return node.children


#: internal names whose documentation is the public class's
ALIASES = {
    "couchcore._api.ServerAPI": "couchcore.Server",
    "couchcore._api.DatabaseAPI": "couchcore.Database",
    "ServerAPI": "couchcore.Server",
    "DatabaseAPI": "couchcore.Database",
    "couchcore._sync.Server": "couchcore.Server",
    "couchcore._sync.Database": "couchcore.Database",
}


def _resolve_short_name(app: Sphinx, env: Any, node: Any, contnode: nodes.Element) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].strip("'\"")
    domain = env.get_domain("py")
    objects = domain.objects  # full name -> ObjectEntry (canonical names included)
    if target in ALIASES:
        full = ALIASES[target]
    elif target.rpartition(".")[0] in ALIASES:  # DatabaseAPI.partition -> couchcore.Database.partition
        head, _, tail = target.rpartition(".")
        full = f"{ALIASES[head]}.{tail}"
    elif target in objects:
        full = target
    else:
        name = target.rpartition(".")[2] if target.startswith("couchcore.") else target
        module, cls = node.get("py:module") or "", node.get("py:class") or ""
        for scope in (f"{module}.{cls}" if cls else "", module, "couchcore"):
            if scope and f"{scope}.{name}" in objects:
                full = f"{scope}.{name}"
                break
        else:
            found = {entry.node_id for full_name, entry in objects.items()
                     if full_name.endswith("." + name) and not entry.aliased}
            full = next((fn for fn, entry in objects.items()
                         if entry.node_id in found and not entry.aliased), "") if len(found) == 1 else ""
    if full not in objects:
        return contnode if _exists_in_code(target, node) else None
    entry = objects[full]
    from sphinx.util.nodes import make_refnode

    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, full)


def _import(dotted: str) -> tuple[bool, Any]:
    """``(True, object)`` for an importable ``couchcore...`` module or attribute path."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False, None
        return True, obj
    return False, None


@functools.lru_cache(maxsize=None)
def _assigned_attributes(klass: type) -> frozenset[str]:
    """The names a class's own code assigns as ``self.name = ...``."""
    try:
        source = inspect.getsource(klass)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(re.findall(r"\bself\.([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)", source))


def _instance_attribute(cls: type, name: str) -> bool:
    """Whether instances of ``cls`` carry attribute ``name`` (slots, annotations, ``self.name =``)."""
    for klass in cls.__mro__:
        if klass is object or not klass.__module__.startswith("couchcore"):
            continue
        if name in getattr(klass, "__slots__", ()) or name in getattr(klass, "__annotations__", {}):
            return True
        if name in _assigned_attributes(klass):
            return True
    return False


def _exists_in_code(target: str, node: Any) -> bool:
    """Whether the reference names something that exists (a name couchcore has, without a page)."""
    return _exists(target, node.get("py:module") or "", node.get("py:class") or "")


@functools.lru_cache(maxsize=None)
def _exists(target: str, module: str, cls: str) -> bool:
    if not module.startswith("couchcore") and not target.startswith("couchcore"):
        return False  # a reference outside couchcore's own names: left to Sphinx (nitpick_ignore)
    if "[" in target:  # a type expression written as a string (a forward reference)
        return all(_exists(t, module, cls) or not t.startswith("couchcore")
                   for t in re.findall(r"[A-Za-z_][\w.]*", target))
    if target.startswith("couchcore."):
        if _import(target)[0]:
            return True
        owner, _, attr = target.rpartition(".")  # an instance attribute: Class.attr
        ok, klass = _import(owner)
        return ok and isinstance(klass, type) and _instance_attribute(klass, attr)
    if cls:  # a member of the documented class or of one of its bases
        ok, klass = _import(f"{module}.{cls}")
        if ok and isinstance(klass, type):
            if any(target in vars(k) for k in klass.__mro__) or _instance_attribute(klass, target):
                return True
            if _import(f"{klass.__module__}.{target}")[0]:  # a name of the (private) module defining a
                return True  # class documented under its public name (couchcore.Paged: Pager, Operation)
    if module:
        return _import(f"{module}.{target}")[0]
    return False


#: names several facades define (couchcore.Database, couchcore.aio.Database, ...): alone, outside
#: the async facades, they mean the sync classes (bulk.load(db: "Database") takes a sync one)
FACADE_NAMES = {"Database": "couchcore.Database", "Server": "couchcore.Server"}
ASYNC_MODULES = ("couchcore.aio", "couchcore.tornado")


def _qualify_facade_names(app: Sphinx, doctree: nodes.document) -> None:
    from sphinx.addnodes import pending_xref

    for node in doctree.findall(pending_xref):
        target = node.get("reftarget", "").strip("'\"")
        if node.get("refdomain") == "py" and target in FACADE_NAMES:
            module = node.get("py:module") or ""
            if module.startswith(ASYNC_MODULES):
                node["reftarget"] = f"{module}.{target}"
            else:
                node["reftarget"] = FACADE_NAMES[target]
            node["refspecific"] = False


def _public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """Leave the facades' internal bases (``couchcore._api.ServerAPI``, ...) out of "Bases:"."""
    internal = ("couchcore._api", "couchcore._facades")
    kept = [b for b in bases if getattr(b, "__module__", "") not in internal]
    bases[:] = kept or [object]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("status-exception-table", StatusExceptionTable)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("missing-reference", _resolve_short_name)
    app.connect("doctree-read", _qualify_facade_names)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
