"""Build definition of couchcore's Cython extension.

``setup.py`` calls :func:`extensions` as ``ext_modules=extensions()``.  It returns the
cythonized ``Extension`` list, or ``[]`` when Cython or a working C compiler is missing
(couchcore then falls back to its pure-Python row parser).  Set ``COUCHCORE_NO_EXT=1`` to
skip the extension on purpose.

``python -m couchcore_ext.build`` builds the extension in place (next to its source) for
development, without going through pip.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_COMPILE_ARGS = ["-O3", "-g0"] if os.name != "nt" else ["/O2"]


def _have_compiler() -> bool:
    """True if a C compiler for this interpreter is usable (checked cheaply)."""
    try:
        from setuptools._distutils.ccompiler import new_compiler  # type: ignore
        from setuptools._distutils.sysconfig import customize_compiler  # type: ignore
    except Exception:  # pragma: no cover - very old setuptools
        try:
            from distutils.ccompiler import new_compiler  # type: ignore
            from distutils.sysconfig import customize_compiler  # type: ignore
        except Exception:
            return False
    try:
        cc = new_compiler()
        customize_compiler(cc)
        if os.name == "nt":
            return True  # MSVC discovery happens at build time; let build_ext decide
        exe = cc.compiler_so[0] if getattr(cc, "compiler_so", None) else None
        if not exe:
            return False
        from shutil import which

        return which(exe) is not None
    except Exception:
        return False


def extensions() -> list:
    """The cythonized extension modules, or ``[]`` if they cannot be built here."""
    if os.environ.get("COUCHCORE_NO_EXT"):
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except Exception as exc:
        sys.stderr.write(f"couchcore: Cython not available ({exc}); using the pure-Python row parser\n")
        return []
    if not _have_compiler():
        sys.stderr.write("couchcore: no C compiler found; using the pure-Python row parser\n")
        return []
    exts = []
    for name in ("_row", "_document", "_rows", "_scan", "_codec", "_dechunk"):  # models.Row and models.Document as extension types; the row parser; the bulk loader's JSON Lines scanner; the codec's check; urllib3's chunked-body decoder
        src = os.path.join("couchcore_ext", name + ".pyx")
        if not os.path.exists(src):  # called from another working directory
            src = os.path.join(HERE, name + ".pyx")
        exts.append(Extension("couchcore_ext." + name, [src], extra_compile_args=_COMPILE_ARGS))
    try:
        return cythonize(
            exts,
            compiler_directives={"language_level": 3},
            quiet=True,
        )
    except Exception as exc:
        sys.stderr.write(f"couchcore: cythonize failed ({exc}); using the pure-Python row parser\n")
        return []


def build_inplace() -> None:
    """Compile the extension next to its source (development helper)."""
    from setuptools import Distribution

    old = os.getcwd()
    os.chdir(ROOT)
    try:
        exts = extensions()
        if not exts:
            raise SystemExit("couchcore_ext: nothing to build (see messages above)")
        dist = Distribution({"name": "couchcore_ext_inplace", "ext_modules": exts})
        cmd = dist.get_command_obj("build_ext")
        cmd.inplace = 1
        dist.run_command("build_ext")
    finally:
        os.chdir(old)


if __name__ == "__main__":
    build_inplace()
