"""A static, self-contained map explorer for a finished ``advpath run`` (``advpath view``).

:func:`advpath_jax.view.build.build_explorer` writes ``index.html`` (the page, with its
JSON index embedded so it opens from the file system), ``index.json`` (the same index)
and small PNG tiles; :mod:`advpath_jax.view.serve` serves a folder on 127.0.0.1.
"""
