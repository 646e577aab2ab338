"""One real socket call per step: the scenarios (data) and the engine that performs them.

Layer rule: imports every layer below (`model`, `kernel`, `net`, `record`, `capture`), never `show`.
"""
