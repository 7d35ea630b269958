"""Traefik (pipeline/traefik/): routes and documents, certificates, the access log."""
