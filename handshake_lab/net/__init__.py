"""Loopback sockets: the client calls, the servers, and the one way the lab runs threads.

``clients`` makes the client calls; ``threaded_server`` is the one server base (listener,
threads, close order) under ``server`` (LoopbackServer) and ``echo_servers``; ``load_test``
counts connections per second; ``background`` runs every thread; ``trace`` is the hook the
calls are reported through.

Layer rule: imports `model`, `kernel` and `timeouts` only. Calls are reported through
`trace`, which knows nothing of who listens, so no socket helper imports the recorder.
"""
