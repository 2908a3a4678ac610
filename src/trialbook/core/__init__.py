"""Pure rules and entities: models, naming, metric keys, curves, comparability, gates,
notes, and the formatting of numbers for display (``core.format``).

Nothing in this package does I/O; every function takes plain values and returns plain
values, so the CLI, the web UI and the server share one implementation of each rule.
"""
