"""Review apps: a branch pushed to an app that opts in is deployed as a preview of its own."""
