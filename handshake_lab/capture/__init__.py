"""Real packets, in tiers: live capture, a private network namespace, the saved SYN and the
segment counters, or the shipped capture.

`evidence` (Tier, Capture and its JSON form; pure) < `sniffer` (the packet socket on 'lo') <
`experiment` (the captured conversation; the namespace child runs only this) < `shipped`,
`saved_syn_tier` and `tiers` (the policy: which tier, and why). `child_process` runs a module
in a fresh process for the namespace experiments; `socket_filter` builds the classic BPF
filters that hold segments back. The experiments that need capture or a private namespace:
`listen_queue` (+ child, evidence), `refusal`, `resets`, `simultaneous_close`, `lost_segments`.
Layer rule: imports `model`, `kernel`, `net`, `record` and `timeouts`.
"""
