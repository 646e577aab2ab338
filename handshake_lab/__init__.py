"""handshake_lab: watch the TCP three-way handshake happen in the real kernel, from Python.

`import handshake_lab` stays light: the names below are loaded on first use, so matplotlib
and ipywidgets are imported only by the plots and widgets that need them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # kernel states
    "TcpState": "model.states",
    "tcp_sockets": "kernel.proc_tcp",
    "parse_tcp_table": "kernel.proc_tcp",
    "connection_state": "kernel.lookup",
    "socket_state": "kernel.tcp_info",
    "accept_queue": "kernel.tcp_info",
    # loopback helpers
    "LoopbackServer": "net.loopback",
    "connect": "net.loopback",
    "start_connect": "net.loopback",
    "finish_connect": "net.loopback",
    "send": "net.loopback",
    "receive": "net.loopback",
    "close": "net.loopback",
    # recording
    "Recorder": "record.recorder",
    "Recording": "record.events",
    "Event": "record.events",
    # the host
    "doctor": "host",
    "kernel_settings": "kernel.sysctls",
    # stepping through a scenario
    "Stepper": "stepper.engine",
    "SCENARIOS": "stepper.engine",
    "StepperWidget": "show.stepper_widget",
    "Prediction": "show.prediction",
    # packets and the TCP model
    "capture_handshake": "capture.tiers",
    "write_pcap": "model.pcap",
    "read_pcap": "model.pcap",
    "Segment": "model.packets",
    "Connection": "model.tcp_model",
    "expected_handshake": "model.tcp_model",
    "check_handshake": "model.tcp_model",
    "narrate": "model.tcp_model",
    # plots (matplotlib is imported when one is drawn)
    "plot_timeline": "show.timeline_plot",
    "plot_ladder": "show.ladder_plot",
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
