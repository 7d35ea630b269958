"""One module per deploy strategy, named after its `Strategy` member."""
