"""Optional C-speed parts of couchcore (Cython).

``couchcore_ext._rows.RowParser`` is the compiled twin of ``couchcore._rows.PyRowParser``;
``couchcore._rows`` picks it up automatically when it is built.  Build it in place with
``python -m couchcore_ext.build`` or through ``pip install .`` (setup.py calls
:func:`couchcore_ext.build.extensions`).
"""
