"""The daemon's inbound faces (receiver/): auth, the error table, proxies, the OpenAPI schema."""
