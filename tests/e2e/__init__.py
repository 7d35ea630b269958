"""End to end: a real `temps serve` on real dockerd and Traefik, pushed to with real git."""
