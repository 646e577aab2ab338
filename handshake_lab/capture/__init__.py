"""Real packets, in tiers: live capture, a private network namespace, or the shipped capture.

`evidence` (Tier, Capture and its JSON form; pure) < `sniffer` (the packet socket on 'lo') <
`experiment` (the captured conversation; the namespace child runs only this) < `shipped` and
`tiers` (the policy: which tier, and why). Layer rule: imports `model`, `kernel`, `net`,
`record` and `timeouts`.
"""
