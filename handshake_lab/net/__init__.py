"""Loopback sockets: the client calls, the servers, and the one way the lab runs threads.

Layer rule: imports `model`, `kernel` and `timeouts` only. Calls are reported through
`trace`, which knows nothing of who listens, so no socket helper imports the recorder.
"""
