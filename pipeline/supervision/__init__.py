"""Between deploys: live slots kept as recorded, scaling, reconciliation at start, and the
thread the periodic checks run on."""
