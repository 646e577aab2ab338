"""What the learner sees: matplotlib figures and ipywidgets front-ends.

Layer rule: the top layer; matplotlib and ipywidgets are imported only inside these modules,
which `handshake_lab/__init__` loads lazily, so `import handshake_lab` stays light.
"""
