"""An app's runtime logs: what its containers print, followed across deploys, scaling and
restarts (`tail.py`), from the containers that serve it (`sources.py`), each line with who
printed it and when (`lines.py`)."""
