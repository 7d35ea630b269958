"""The steps of a deploy, each a small function of the deploy and what it needs: build,
boot, gate, switch, bake, retire, fail, prune, background processes, notify."""
