"""Locust load tests of the gateway and of the model server behind it."""
