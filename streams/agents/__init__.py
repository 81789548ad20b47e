"""One module per agent: explode -> process -> aggregate (see the README diagram)."""

from streams.agents import aggregate, explode, process

__all__ = ["aggregate", "explode", "process"]
