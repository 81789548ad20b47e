"""Handlers that ship with batchwire; the worker imports this module at start.

- `batchwire/noop`: returns `{"ok": true}` at once (benchmarks measure the engine with it);
- `batchwire/echo`: returns its params unchanged.
"""

from __future__ import annotations

from typing import Any

from streams.handlers import ActionContext, action


@action("batchwire", "noop")
def noop(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
    """Do nothing, successfully."""
    return {"ok": True}


@action("batchwire", "echo")
def echo(params: Any, ctx: ActionContext) -> Any:
    """Return the params as the output."""
    return params
