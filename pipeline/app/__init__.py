"""An app's own settings and files: temps.toml, the Procfile, the Dockerfile's base images,
its storage, sealed values, push webhooks."""
