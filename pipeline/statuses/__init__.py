"""Commit statuses: each deploy's state reported on the deployed commit, to GitHub's or
GitLab's status API, so that a pull request shows its preview's deploy beside its checks.

`destination` holds an app's settings (which API, which repository, the token), `status` what
one report says, `github` and `gitlab` the request each API takes, `sender` posts them in the
background and in order, and `report` turns a release into a report at each state change.
"""
