"""Repositories and pushes (pipeline/git/): packs, receive-pack, commit trees."""
