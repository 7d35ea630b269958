"""A release's states and the one function that changes them (pipeline/release/)."""
