"""One real socket call per step: the scenarios (data), the calls on one run's sockets, and the
engine that orders steps, waits for blocked calls and takes the kernel's snapshot.

Layer rule: imports every layer below (`model`, `kernel`, `net`, `record`, `capture`), never `show`.
"""
