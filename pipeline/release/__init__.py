"""A release's record: its states and the one writer of them, its formation and slot, its log."""
