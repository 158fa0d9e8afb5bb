"""The application layer: the ``tagstream`` CLI and the local runner (``tagstream up``).

It may import ``shared`` and the services; nothing imports it. Services talk over
topics only, and ``shared`` is the library under all of them.
"""
