#!/usr/bin/env python3
"""Generate ``couchcore/_facades.pyi``: the typed methods of every facade flavour.

The facade methods are written once, in :mod:`couchcore._api` (``ServerAPI``,
``DatabaseAPI``) and :mod:`couchcore._partition` (``Partition``), with the types of the
sync flavour: each builds a protocol operation and returns ``self._run(op)``. At run
time the async facade runs the same code and ``_run`` returns an awaitable instead.
This script reads those classes (their AST; nothing is imported) and writes, for type
checkers and IDEs only, one declaration class per flavour:

* ``SyncServerAPI`` / ``SyncDatabaseAPI``: the source's signatures, with ``ServerAPI`` /
  ``DatabaseAPI`` read as :class:`couchcore.Server` / :class:`couchcore.Database`;
* ``AsyncServerAPI`` / ``AsyncDatabaseAPI`` / ``AsyncPartition``: every method that
  runs an operation (its ``return`` goes through ``_run``, directly or through another
  such method) returns ``Awaitable[T]`` instead of ``T`` (``AsyncCall[T, item]`` when
  the result can also be iterated at once with ``async for``), with the classes of
  :mod:`couchcore.tornado`; every public method of Server/Database also gets its
  ``callback=`` overloads (``callback(result | None, Status)``, an ``asyncio.Task`` of the
  result), as :func:`couchcore._callbacks.add_callbacks` gives them at run time;
  the results that work differently there are declared as the async flavour's
  protocols (``ViewResult`` -> ``AsyncViewResult``: ``async for`` and ``aall()``, not
  ``for``; ``ConflictResolution`` -> ``AsyncConflictResolution``: ``resolve()`` returns
  an awaitable; see ``ASYNC_RESULTS``), except where the value is read whole first
  (a callback gets a ``ViewResult`` read whole: plain ``for`` works on it);
* ``AioServerAPI`` / ``AioDatabaseAPI``: the members whose types name a facade class,
  again with the classes of :mod:`couchcore.aio`.

``couchcore/_sync.py``, ``tornado.py`` and ``aio.py`` derive from these classes under
``TYPE_CHECKING`` (and from the source classes at run time). A method whose returns
are partly run and partly not (``changes``) is declared loosely (``-> Any``) for the
async flavour, which declares its own.

Usage: ``python tools/gen_facades.py`` (write) or ``--check`` (exit 1 when the file
is out of date; ``tests/unit/test_typing.py`` runs it).
"""

from __future__ import annotations

import ast
import builtins
import sys
from dataclasses import dataclass, field
from typing import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "couchcore" / "_facades.pyi"

#: (module file, class) of each source class, in output order
SOURCES = [("couchcore/_api.py", "ServerAPI"), ("couchcore/_api.py", "DatabaseAPI"),
           ("couchcore/_partition.py", "Partition")]

#: methods that run an operation by definition (the driver hooks)
RUN_SEEDS = {"_run", "_run_many"}


#: the async flavours' view of a result class: the protocol declaring what works on a
#: result of an async backend (at run time the same class), and where it is imported from
ASYNC_RESULTS = {
    "ViewResult": ("AsyncViewResult", "from couchcore._results import AsyncViewResult"),
    "AttachmentStream": ("AsyncAttachmentStream", "from couchcore._results import AsyncAttachmentStream"),
    "ConflictResolution": ("AsyncConflictResolution", "from couchcore.models import AsyncConflictResolution"),
    "Paged": ("AsyncPaged", "from couchcore._paging import AsyncPaged"),
    "ChangesFollower": ("AsyncChangesFollower", "from couchcore._follow import AsyncChangesFollower"),
}

#: results the async facade reads whole before a callback gets them (couchcore._callbacks:
#: every StreamedResult): the callback's value is the sync flavour's view of the class
READ_WHOLE_FOR_CALLBACK = {"ViewResult", "AttachmentStream"}

#: results the async facade hands a callback as a list of their items, read whole
#: (couchcore._callbacks: ``iterview``/``iterfind``'s pages): ``Paged[T]`` -> ``list[T]``
LISTED_FOR_CALLBACK = {"Paged": "_builtins.list"}


@dataclass
class Flavour:
    prefix: str
    names: dict[str, str]  # source class -> the flavour's class (as written in the stub)
    wrap: bool  # run methods return awaitables (and results are the ASYNC_RESULTS protocols)
    classes: list[str]  # which source classes get a declaration class
    base: dict[str, str] = field(default_factory=dict)  # source class -> base of its declaration
    only_facade_members: bool = False  # declare only members whose types name a facade class


FLAVOURS = [
    Flavour("Sync", {"ServerAPI": "_sync.Server", "DatabaseAPI": "_sync.Database", "Partition": "Partition"},
            wrap=False, classes=["ServerAPI", "DatabaseAPI"]),
    Flavour("Async", {"ServerAPI": "_tornado.Server", "DatabaseAPI": "_tornado.Database",
                      "Partition": "AsyncPartition"},
            wrap=True, classes=["ServerAPI", "DatabaseAPI", "Partition"]),
    Flavour("Aio", {"ServerAPI": "_aio.Server", "DatabaseAPI": "_aio.Database", "Partition": "AsyncPartition"},
            wrap=True, classes=["ServerAPI", "DatabaseAPI"],
            base={"ServerAPI": "_tornado.Server", "DatabaseAPI": "_tornado.Database"},
            only_facade_members=True),
]

#: results the async facade's task can also be iterated over at once (``async for``)
STREAMED_ITEMS = {"AsyncViewResult": "Row", "AsyncAttachmentStream": "bytes"}

#: names the stub always imports itself
STUB_NAMES = {"Any", "Awaitable", "AsyncCall", "overload", "_builtins", "_sync", "_tornado", "_aio", "asyncio",
              *(fl.prefix + name for fl in FLAVOURS for name in fl.classes)}

KEEP_DECORATORS = {"overload", "property", "classmethod", "staticmethod"}
#: decorators of couchcore/_api.py that keep the signature (functools.wraps): left out of the stubs
TRANSPARENT_DECORATORS = {"_session_call"}

#: the async facade gives every public method of these classes ``callback=``
#: (:func:`couchcore._callbacks.add_callbacks`), except these
CALLBACK_CLASSES = {"ServerAPI", "DatabaseAPI"}
NO_CALLBACK = {"close", "changes", "db_updates", "follow"}


class GenError(Exception):
    pass


# -- reading the source ----------------------------------------------------------------------


def _module_imports(tree: ast.Module, module: str) -> dict[str, str]:
    """name -> the import statement that binds it at module level (absolute)."""
    out: dict[str, str] = {}
    package = module.rsplit(".", 1)[0]
    body = list(tree.body)
    for node in tree.body:  # imports under ``if TYPE_CHECKING:`` (deferred at run time) count too
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            body.extend(n for n in node.body if isinstance(n, (ast.ImportFrom, ast.Import)))
    for node in body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: -node.level]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                name = alias.asname or alias.name
                stmt = f"from {base} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                out[name] = stmt
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                out[name] = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.ClassDef, ast.FunctionDef)):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                names = [node.name]
            for name in names:
                out[name] = f"from {module} import {name}"
    del package
    return out


def _annotation(node: ast.expr | None) -> ast.expr | None:
    """An annotation as an expression (string annotations parsed)."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ast.parse(node.value, mode="eval").body
    return node


@dataclass
class Member:
    name: str
    kind: str  # "method" | "attr"
    node: ast.FunctionDef | None = None
    annotation: ast.expr | None = None
    overloads: list[ast.FunctionDef] = field(default_factory=list)
    run: str = "plain"  # plain | run | mixed


@dataclass
class SourceClass:
    name: str
    module: str
    node: ast.ClassDef
    imports: dict[str, str]
    members: dict[str, Member] = field(default_factory=dict)


def _decorators(fn: ast.FunctionDef) -> list[str]:
    out = []
    for dec in fn.decorator_list:
        name = dec.id if isinstance(dec, ast.Name) else dec.attr if isinstance(dec, ast.Attribute) else None
        if name in KEEP_DECORATORS:
            out.append(name)
        elif name in TRANSPARENT_DECORATORS:
            continue
        elif not (isinstance(dec, ast.Attribute) and dec.attr in ("setter", "deleter")):
            raise GenError(f"{fn.name}: decorator {ast.unparse(dec)} is not understood")
    return out


def read_class(path: str, name: str) -> SourceClass:
    tree = ast.parse((ROOT / path).read_text(), path)
    module = path[:-3].replace("/", ".")
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if node is None:
        raise GenError(f"{path}: no class {name}")
    cls = SourceClass(name, module, node, _module_imports(tree, module))
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            decs = _decorators(item)
            member = cls.members.get(item.name)
            if "overload" in decs:
                if member is None:
                    member = cls.members[item.name] = Member(item.name, "method")
                member.overloads.append(item)
            elif member is not None and member.kind == "method" and member.node is None:
                member.node = item
            else:
                cls.members[item.name] = Member(item.name, "method", item)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            cls.members[item.target.id] = Member(item.target.id, "attr", annotation=_annotation(item.annotation))
        elif isinstance(item, ast.Assign):
            for target in item.targets:
                if not isinstance(target, ast.Name):
                    continue
                value = item.value
                if isinstance(value, ast.Constant) and type(value.value) in (bool, int, str, float):
                    ann: ast.expr = ast.Name(type(value.value).__name__)
                else:
                    raise GenError(f"{name}.{target.id}: annotate it (its type is not a literal's)")
                cls.members[target.id] = Member(target.id, "attr", annotation=ann)
    # instance attributes set in methods: annotated, or a parameter of the method
    for item in node.body:
        if not isinstance(item, ast.FunctionDef):
            continue
        params = {a.arg: a.annotation for a in item.args.args + item.args.kwonlyargs}
        for sub in ast.walk(item):
            attr_target: ast.expr | None = None
            value_ann: ast.expr | None = None
            if isinstance(sub, ast.AnnAssign):
                attr_target, value_ann = sub.target, sub.annotation
            elif isinstance(sub, ast.Assign) and len(sub.targets) == 1:
                attr_target = sub.targets[0]
                if isinstance(sub.value, ast.Name) and params.get(sub.value.id) is not None:
                    value_ann = params[sub.value.id]
            if not (isinstance(attr_target, ast.Attribute) and isinstance(attr_target.value, ast.Name)
                    and attr_target.value.id == "self"):
                continue
            attr = attr_target.attr
            if attr in cls.members:
                continue
            if value_ann is None:
                raise GenError(f"{name}.{item.name}: annotate self.{attr} (line {getattr(sub, 'lineno', '?')})")
            cls.members[attr] = Member(attr, "attr", annotation=_annotation(value_ann))
    return cls


# -- which methods run an operation ----------------------------------------------------------


def _calls_run(expr: ast.AST, run_names: set[str]) -> bool:
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in run_names:
            root: ast.expr = sub.func.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id == "self":
                return True
    return False


def _classify(fn: ast.FunctionDef, run_names: set[str]) -> str:
    bound: dict[str, ast.expr] = {}
    for sub in ast.walk(fn):
        if isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name) and sub.value is not None:
            bound[sub.target.id] = sub.value
        elif isinstance(sub, ast.Assign):
            for target in sub.targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = sub.value
    kinds = set()
    for sub in ast.walk(fn):
        if isinstance(sub, ast.Return):
            value = sub.value
            if value is None:
                kinds.add("plain")
                continue
            if isinstance(value, ast.Name) and value.id in bound:
                value = bound[value.id]
            kinds.add("run" if _calls_run(value, run_names) else "plain")
    if kinds == {"run"}:
        return "run"
    return "mixed" if "run" in kinds else "plain"


def classify(classes: list[SourceClass]) -> None:
    run_names = set(RUN_SEEDS)
    while True:
        changed = False
        for cls in classes:
            for member in cls.members.values():
                if member.kind != "method" or member.name in RUN_SEEDS:
                    if member.name in RUN_SEEDS:
                        member.run = "run"
                    continue
                fn = member.node or member.overloads[-1]
                kind = _classify(fn, run_names)
                if kind != member.run:
                    member.run = kind
                    changed = True
                if kind == "run" and member.name not in run_names:
                    run_names.add(member.name)
                    changed = True
        if not changed:
            return


# -- writing the stub ------------------------------------------------------------------------


class _Rewrite(ast.NodeTransformer):
    def __init__(self, names: dict[str, str], results: dict[str, str] | None = None) -> None:
        self.names = names
        self.results = results or {}  # result class -> the flavour's protocol of it
        self.used: set[str] = set()
        self.facade = False

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.results:
            self.used.add(self.results[node.id])
            return ast.Name(self.results[node.id])
        if node.id in self.names:
            self.facade = True
            new = ast.parse(self.names[node.id], mode="eval").body
            if isinstance(new, ast.Name):
                self.used.add(new.id)
            return new
        if node.id in ("list", "dict", "type", "tuple", "set"):
            return ast.Attribute(ast.Name("_builtins"), node.id)  # a method may shadow the builtin
        self.used.add(node.id)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        if isinstance(node.value, ast.Name) and node.value.id == "Literal":
            self.used.add("Literal")
            return node  # its strings are values, not forward references
        self.generic_visit(node)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        if isinstance(node.value, str):  # a forward reference inside an annotation
            return self.visit(ast.parse(node.value, mode="eval").body)  # type: ignore[no-any-return]
        return node


def _results(fl: Flavour) -> dict[str, str]:
    """result class -> the name the flavour declares it as (the async protocols)."""
    return {name: proto for name, (proto, _) in ASYNC_RESULTS.items()} if fl.wrap else {}


def _wrap(ret: ast.expr) -> ast.expr:
    """``T`` -> ``Awaitable[T]`` / ``AsyncCall[T, item]`` for the async flavour."""
    item: ast.expr | None = None
    if isinstance(ret, ast.Name) and ret.id in STREAMED_ITEMS:
        item = ast.Name(STREAMED_ITEMS[ret.id])
    elif (isinstance(ret, ast.Subscript) and isinstance(ret.value, ast.Attribute)
          and ret.value.attr == "list" and not isinstance(ret.slice, ast.Tuple)):
        item = ret.slice
    if item is not None:
        return ast.Subscript(ast.Name("AsyncCall"), ast.Tuple([ret, item]))
    return ast.Subscript(ast.Name("Awaitable"), ret)


class Writer:
    def __init__(self) -> None:
        self.imports: dict[str, str] = {}
        self.lines: list[str] = []

    def need(self, names: set[str], cls: SourceClass) -> None:
        protocols = {proto: stmt for proto, stmt in ASYNC_RESULTS.values()}
        for name in names - STUB_NAMES:
            if name.startswith("_builtins."):
                continue
            stmt = protocols.get(name) or cls.imports.get(name)
            if stmt is None:
                if hasattr(builtins, name):
                    continue
                raise GenError(f"{cls.name}: cannot tell where {name!r} comes from")
            if name in self.imports and self.imports[name] != stmt:
                raise GenError(f"{name!r} is imported as {self.imports[name]!r} and as {stmt!r}")
            self.imports[name] = stmt

    def annotation(self, node: ast.expr | None, fl: Flavour, cls: SourceClass, info: dict[str, bool]) -> str:
        if node is None:
            raise GenError(f"{cls.name}: a parameter or return without annotation")
        rewrite = _Rewrite(fl.names, _results(fl))
        new = rewrite.visit(ast.parse(ast.unparse(node), mode="eval").body)  # (a copy: strings parsed as it goes)
        self.need(rewrite.used, cls)
        info["facade"] = info.get("facade", False) or rewrite.facade
        return ast.unparse(new)

    def signature(self, fn: ast.FunctionDef, fl: Flavour, cls: SourceClass, run: str,
                  info: dict[str, bool], callback: str | None = None) -> str:
        """``def name(...) -> ret: ...``; ``callback`` ``"none"`` adds ``callback: None = ...``,
        ``"fn"`` a required ``callback`` and the task returned then (the async facade's
        callback style, see :func:`couchcore._callbacks.with_callback`)."""
        args = fn.args
        parts: list[str] = []

        def one(arg: ast.arg, default: ast.expr | None) -> str:
            if arg.annotation is None and arg.arg in ("self", "cls"):
                text = arg.arg
            else:
                param: dict[str, bool] = {}
                text = f"{arg.arg}: {self.annotation(arg.annotation, fl, cls, param)}"
                if param.get("facade"):  # a narrower parameter type would break the override
                    info["facade_param"] = True
            return text + (" = ..." if default is not None else "")

        positional = args.posonlyargs + args.args
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for i, (arg, default) in enumerate(zip(positional, defaults)):
            parts.append(one(arg, default))
            if args.posonlyargs and i == len(args.posonlyargs) - 1:
                parts.append("/")
        if args.vararg is not None:
            parts.append("*" + one(args.vararg, None))
        elif args.kwonlyargs:
            parts.append("*")
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
            parts.append(one(arg, kw_default))
        callback_at = len(parts)
        if args.kwarg is not None:
            parts.append("**" + one(args.kwarg, None))
        if fn.returns is None:
            raise GenError(f"{cls.name}.{fn.name}: no return annotation")
        if fl.wrap and run == "mixed":  # the flavour's class declares it (any signature overrides this one)
            return f"def {fn.name}(self, *args: Any, **kwargs: Any) -> Any: ..."
        else:
            ret_node = _annotation(fn.returns)
            results = _results(fl)
            if callback == "fn":  # what the callback gets
                results = {k: v for k, v in results.items() if k not in READ_WHOLE_FOR_CALLBACK}
                results.update(LISTED_FOR_CALLBACK)
            rewrite = _Rewrite(fl.names, results)
            assert ret_node is not None
            new = rewrite.visit(ast.parse(ast.unparse(ret_node), mode="eval").body)
            self.need(rewrite.used, cls)
            info["facade"] = info.get("facade", False) or rewrite.facade
            if callback is not None:
                if args.vararg is None and not args.kwonlyargs:
                    parts.insert(callback_at, "*")
                    callback_at += 1
                if callback == "none":
                    parts.insert(callback_at, "callback: None = ...")
                else:
                    result = f"{ast.unparse(new)} | None"
                    parts.insert(callback_at, f"callback: _Callable[[{result}, _Status], Any]")
                    return f"def {fn.name}({', '.join(parts)}) -> asyncio.Task[{result}]: ..."
            if fl.wrap and run == "run":
                new = _wrap(new)
            ret = ast.unparse(new)
        return f"def {fn.name}({', '.join(parts)}) -> {ret}: ..."

    def member(self, m: Member, fl: Flavour, cls: SourceClass) -> list[str]:
        info: dict[str, bool] = {}
        out: list[str] = []
        if m.kind == "attr":
            out.append(f"    {m.name}: {self.annotation(m.annotation, fl, cls, info)}")
        else:
            fns = m.overloads if m.overloads else [m.node]
            if fl.wrap and m.run == "mixed" and m.node is not None:
                fns = [m.node]  # declared loosely; the flavour's own class declares it exactly
            plain_decorators = {d for fn in fns if fn is not None for d in _decorators(fn)} - {"overload"}
            with_callback = (fl.wrap and cls.name in CALLBACK_CLASSES and m.run != "mixed" and not plain_decorators
                             and not m.name.startswith("_") and m.name not in NO_CALLBACK)
            variants: list[tuple[ast.FunctionDef, str | None]] = [(fn, "none" if with_callback else None)
                                                                  for fn in fns if fn is not None]
            if with_callback:  # each signature again with callback= (then a task of the result)
                variants += [(fn, "fn") for fn in fns if fn is not None]
            for fn, mode in variants:
                for dec in _decorators(fn):
                    if dec == "overload" and len(variants) == 1:
                        continue
                    out.append(f"    @{dec}")
                if len(variants) > 1 and "overload" not in _decorators(fn):
                    out.append("    @overload")
                out.append("    " + self.signature(fn, fl, cls, m.run, info, mode))
                doc = ast.get_docstring(m.node) if m.node is not None else None
                if doc and (fn, mode) == variants[-1]:
                    out[-1] = out[-1][: -len(" ...")]
                    out.extend(_docstring(doc, "        "))
        if fl.only_facade_members and (not info.get("facade") or info.get("facade_param")):
            return []
        return out


def _docstring(doc: str, indent: str) -> list[str]:
    doc = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = doc.split("\n")
    lines[0] = '"""' + lines[0]
    lines[-1] += '"""'
    return [indent + line if line.strip() else "" for line in lines]


HEADER = '''"""Typed declarations of the facade flavours: GENERATED by tools/gen_facades.py from
couchcore/_api.py and couchcore/_partition.py. Do not edit; run the script instead
(tests/unit/test_typing.py fails when this file is out of date).

Type checkers only: at run time ``couchcore._sync``, ``couchcore.tornado`` and
``couchcore.aio`` derive from the source classes themselves.
"""

import asyncio
import builtins as _builtins
from typing import Any, AsyncIterator, Awaitable, Generator, Protocol, TypeVar, overload
from typing import Callable as _Callable

from couchcore.models import Status as _Status

import couchcore.aio as _aio
import couchcore._sync as _sync
import couchcore.tornado as _tornado
'''

ASYNC_CALL = '''

_R_co = TypeVar("_R_co", covariant=True)
_I_co = TypeVar("_I_co", covariant=True)


class AsyncCall(Protocol[_R_co, _I_co]):
    """What a method of the async facade returns for a result that can be iterated:
    ``await`` it for the result, or (inside a running event loop) ``async for item in
    db.view(...)`` directly."""

    def __await__(self) -> Generator[Any, Any, _R_co]: ...
    def __aiter__(self) -> AsyncIterator[_I_co]: ...
'''


def generate() -> str:
    classes = [read_class(path, name) for path, name in SOURCES]
    classify(classes)
    by_name = {cls.name: cls for cls in classes}
    writer = Writer()
    body: list[str] = []
    for fl in FLAVOURS:
        for cname in fl.classes:
            cls = by_name[cname]
            out_name = fl.prefix + cname
            base = fl.base.get(cname)
            body.append("")
            body.append("")
            body.append(f"class {out_name}{f'({base})' if base else ''}:")
            doc = ast.get_docstring(cls.node)
            members: list[str] = []
            for m in cls.members.values():
                members.extend(writer.member(m, fl, cls))
            if doc:
                body.extend(_docstring(doc, "    "))
            elif not members:
                members = ["    ..."]
            body.extend(members)
    return HEADER + "\n" + "\n".join(_grouped(writer.imports.values())) + "\n" + ASYNC_CALL + "\n".join(body) + "\n"


def _grouped(statements: Iterable[str]) -> list[str]:
    """``from m import a`` + ``from m import b`` -> ``from m import a, b``; sorted."""
    names: dict[str, set[str]] = {}
    plain: set[str] = set()
    for stmt in statements:
        if stmt.startswith("from "):
            module, _, name = stmt[len("from "):].partition(" import ")
            names.setdefault(module, set()).add(name)
        else:
            plain.add(stmt)
    out = sorted(plain)
    for module in sorted(names):
        out.append(f"from {module} import {', '.join(sorted(names[module]))}")
    return out


def main(argv: list[str]) -> int:
    try:
        text = generate()
    except GenError as exc:
        print(f"gen_facades: {exc}", file=sys.stderr)
        return 2
    if "--check" in argv:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python tools/gen_facades.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
