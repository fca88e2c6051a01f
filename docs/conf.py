"""Sphinx configuration of couchcore's documentation (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))  # couchcore_docs: the status-code table directive
sys.path.insert(0, str(ROOT))  # benchmarks.harness, for the CLI reference of `couchcore bench`

import warnings  # noqa: E402

import couchcore  # noqa: E402
import couchcore.models  # noqa: E402

# couchcore.Row is the extension type couchcore_ext._row.Row when that is built; the reference
# shows the pure-Python class it mirrors (same behaviour, and it carries the annotations the
# parameter lists are rendered from), so the page is the same with or without the extension
couchcore.Row = couchcore.models.Row = couchcore.models._PyRow

# sphinx-autodoc-typehints calls an API Sphinx 10 removes: a Python warning, not a docs problem
warnings.filterwarnings("ignore", message=".*set_application.* is deprecated")

project = "couchcore"
author = "couchcore developers"
copyright = "couchcore developers"
release = version = couchcore.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_autodoc_typehints",  # after autodoc: renders the annotations into the parameter lists
    "sphinxarg.ext",  # sphinx-argparse: the CLI reference, read from couchcore.cli.build_parser()
    "couchcore_docs",
]

root_doc = "index"
smartquotes = False  # option names stay --quick, not an en dash
exclude_patterns = ["_build", "examples"]
templates_path: list[str] = []
html_theme = "furo"
html_title = f"couchcore {release}"
html_static_path: list[str] = []

# the reference: members in source order, signatures without the type noise (the types go
# into the parameter lists, sphinx-autodoc-typehints)
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "show-inheritance": True}
typehints_document_rtype = True
always_document_param_types = False

# `-n` (nitpicky) checks every cross-reference to couchcore's own names. The standard library
# and third-party libraries have no inventory here (the build stays offline: no intersphinx),
# so their names are not checked.
nitpicky = True
# the typed facades' bases are imported under TYPE_CHECKING from a stub-only module
# (couchcore/_facades.pyi), which sphinx-autodoc-typehints cannot import at run time
suppress_warnings = ["sphinx_autodoc_typehints.guarded_import"]
nitpick_ignore_regex = [
    (r"py:.*", r"(typing|typing_extensions|collections|collections\.abc|abc|asyncio|concurrent|"
               r"_asyncio|contextvars|io|os|pathlib|threading|types|enum|argparse|builtins|json|socket|ssl|"
               r"http|urllib|urllib3|pycurl|tornado|msgspec|orjson|simplejson|tqdm)(\..*)?"),
    (r"py:class", r"(Any|Callable|Iterable|Iterator|Mapping|MutableMapping|Sequence|Generator|"
                  r"AsyncIterator|AsyncGenerator|Awaitable|Coroutine|IO|TypeVar|Union|Optional|Protocol|"
                  r"Generic|T|NoneType|Ellipsis|EllipsisType|bytes|str|int|float|bool|dict|list|tuple|set|"
                  r"frozenset|object|type|BaseException|Exception|ValueError|KeyError|TypeError|"
                  r"ConnectionError|TimeoutError|OSError|memoryview|bytearray|datetime\.datetime)"),
    (r"py:(exc|class)", r"(ValueError|KeyError|TypeError|OSError|StopIteration|TimeoutError|ConnectionError|"
                        r"BaseException|Exception|AttributeError|RuntimeError|KeyboardInterrupt)"),
    (r"py:(func|meth|class|attr)", r"(len|iter|next|open|print|dict\..*|list\..*|str\..*|bytes\..*)"),
    (r"py:(data|obj)", r"(Ellipsis|None|True|False|NotImplemented)"),
    (r"py:(obj|class)", r"couchcore\..*\._?[A-Z]"),  # TypeVars (T, _T, _I)
]
