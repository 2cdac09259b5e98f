"""Broker transports trainlog installs in place of kombu's stock ones."""
