"""The Docker engine: the only package that imports the docker SDK. `runtime.DockerRuntime`
is the single engine, `swarm.SwarmRuntime` a Swarm manager; `pipeline.backends` opens them."""
