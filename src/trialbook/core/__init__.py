"""Pure rules and entities: models, naming, metric keys, curves, gates and notes.

Nothing in this package does I/O; every function takes plain values and returns plain
values, so the CLI, the web UI and the server share one implementation of each rule.
"""
