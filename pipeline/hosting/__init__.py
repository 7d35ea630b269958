"""Where apps are served: their hosts, HTTPS certificates ordered or uploaded."""
