"""Commit statuses: their requests, their sender, and the reports deploys make."""
