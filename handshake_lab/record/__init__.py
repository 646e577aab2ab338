"""The timeline: typed events, the Recording, and the Recorder that fills it.

Layer rule: imports `model`, `kernel`, `net` and `timeouts`; the Recorder subscribes to
`net.trace` and samples kernel states through `kernel.lookup`.
"""
