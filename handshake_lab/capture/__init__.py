"""Real packets, in tiers: live capture, a private network namespace, or the shipped capture.

Layer rule: imports `model`, `kernel`, `net`, `record` and `timeouts`.
"""
