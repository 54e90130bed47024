"""Support shared by bench/ and tests/ (never imported by the service): the processes they
start (simulators, web, workers), each in its own process group, stopped by PID."""
