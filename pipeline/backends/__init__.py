"""The runtimes apps run on, by `Backend` (`temps serve --runtime`): `opener.open_runtime`
opens the daemon's, and a backend's own section of temps.toml sits beside it (`swarm.py`,
a leaf that imports no docker).

A backend is a package of its own that implements `pipeline.runtime.Runtime`; adding one is
that package, a `Backend` member and its line in `opener.OPENERS`.
"""
