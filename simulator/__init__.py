"""A local stand-in for Runware's REST API (Ideogram Remix models), with fault injection.

Entry points: ``simulator.app.create_app``, ``simulator.server.serve``, the ``simulator`` click
command (``remixq simulator`` / ``python -m simulator``). Contract: ../shared/spec; every point
it leaves open is decided in ``simulator.assumptions``.
"""
