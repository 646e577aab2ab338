"""Exercise checkers: each runs the learner's code on real loopback sockets and says,
specifically, what worked and what to change. One module per notebook; `Feedback` is
the common answer they return.
"""

from .feedback import Feedback

__all__ = ["Feedback"]
