"""handshake_lab: watch the TCP three-way handshake happen in the real kernel, from Python.

`import handshake_lab` stays light: the names below are loaded on first use, so matplotlib
and ipywidgets are imported only by the plots and widgets that need them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # kernel states
    "TcpState": "states",
    "tcp_sockets": "procnet",
    "parse_tcp_table": "procnet",
    "connection_state": "connections",
    "socket_state": "tcpinfo",
    "accept_queue": "tcpinfo",
    # loopback helpers
    "LoopbackServer": "loopback",
    "connect": "loopback",
    "start_connect": "loopback",
    "finish_connect": "loopback",
    "send": "loopback",
    "receive": "loopback",
    "close": "loopback",
    # recording
    "Recorder": "recorder",
    "Recording": "timeline",
    "Event": "timeline",
    # the host
    "doctor": "capabilities",
    "kernel_settings": "sysctls",
    # stepping through a scenario
    "Stepper": "stepper",
    "SCENARIOS": "stepper",
    "StepperWidget": "stepper_widget",
    "Prediction": "predict",
    # packets and the TCP model
    "capture_handshake": "capture",
    "write_pcap": "pcap",
    "read_pcap": "pcap",
    "Segment": "packets",
    "Connection": "tcp_model",
    "expected_handshake": "tcp_model",
    "check_handshake": "tcp_model",
    "narrate": "tcp_model",
    # plots (matplotlib is imported when one is drawn)
    "plot_timeline": "timeline_plot",
    "plot_ladder": "ladder_plot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'handshake_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
