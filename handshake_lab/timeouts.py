"""Every timeout the lab uses, in one place, in seconds.

Rule: no blocking call in handshake_lab is made without one of these (or a caller's
own value). They are generous for loopback, where a round trip takes microseconds, so
that a slow CI machine never flakes, yet short enough that a notebook cell never hangs.
"""

#: connect(), accept(), send() and recv() between two sockets on this machine.
LOOPBACK_TIMEOUT = 5.0

#: How long a helper waits for its own background thread to finish on exit.
THREAD_JOIN_TIMEOUT = 5.0

#: How long to wait for something that should already have happened (a state to appear).
SHORT_TIMEOUT = 2.0

#: The recorder's sampling period: about every millisecond, only while recording.
SAMPLE_INTERVAL = 0.001

#: A child process that runs a capture experiment (namespace tier) must finish in this.
CAPTURE_TIMEOUT = 20.0

#: Upper bound on waiting for a real kernel timer (a SYN retransmission, first retry ~1 s).
KERNEL_TIMER_TIMEOUT = 8.0
