"""Scheduled jobs (`[[cron]]` in temps.toml): the schedule's arithmetic, the one thread that
wakes at the next due time of any app's entries, and the run of one job in a one-off
container of the release live when it starts."""
