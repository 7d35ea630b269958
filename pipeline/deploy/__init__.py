"""A release's deploy: the story, the per-app queue, what the API asks beyond a push, and
one module per strategy."""
