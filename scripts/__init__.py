"""Helper scripts for running the service locally."""
