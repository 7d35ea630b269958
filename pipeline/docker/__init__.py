"""The Docker engine: the only package that imports the docker SDK."""

from pipeline.docker.runtime import DockerRuntime

__all__ = ["DockerRuntime"]
