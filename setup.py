"""Build script: metadata lives in pyproject.toml; this only adds the optional Cython extension.

The extension in couchcore_ext/ is built when Cython and a C compiler are available and
skipped otherwise (couchcore then uses its pure-Python row parser).
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when the extension cannot be compiled."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ...
            self._skip(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    @staticmethod
    def _skip(exc):
        sys.stderr.write(f"couchcore: Cython extension not built ({exc}); using the pure-Python parser\n")


def extensions():
    if os.environ.get("COUCHCORE_NO_EXT"):
        return []
    try:
        from couchcore_ext.build import extensions as ext_list
    except Exception as exc:  # Cython missing or the build helper failed
        sys.stderr.write(f"couchcore: not building the Cython extension ({exc})\n")
        return []
    return ext_list()


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
