"""`python -m support.swarm launch ...` and `python -m support.swarm forward ...`: the harness
re-invokes itself this way inside a node's namespace (`helpers._self_command`)."""

from support.swarm.launch import main

# Guarded so that importing this module (as a check, or by a tool) starts nothing.
if __name__ == "__main__":
    main()
