"""`python -m tests.support.swarm launch ...` and `python -m tests.support.swarm forward ...`:
the harness re-invokes itself this way inside a node's namespace (`helpers._self_command`)."""

from tests.support.swarm.launch import main

# Guarded so that importing this module (as a check, or by a tool) starts nothing.
if __name__ == "__main__":
    main()
