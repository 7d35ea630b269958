"""An app's own files and settings (pipeline/app/): temps.toml, its Dockerfile, sealed values."""
