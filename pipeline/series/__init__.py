"""Each app's traffic over time, from Traefik's access log: read as it grows (`collect`),
summed per app in fixed buckets with a small latency histogram each (`buckets`), kept for
`--series-retention` in SQLite (`pipeline.sqlite.series`), and read back at most
`MAX_POINTS` points for any range (`downsample`)."""
