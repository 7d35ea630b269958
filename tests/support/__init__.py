"""Support code for the end-to-end tests: a local base image, app repositories, a daemon under
test, a load generator and a thin wrapper over the docker CLI."""
