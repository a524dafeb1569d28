"""Protocols other serving stacks speak, mapped onto the service's one data plane."""
