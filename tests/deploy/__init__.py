"""The deploy story and its strategies (pipeline/deploy/)."""
