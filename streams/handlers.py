"""The action registry: Python handlers for `{namespace, action, params}` items.

A handler is registered with the decorator `action(namespace, action)`:

    from streams.handlers import ActionContext, action

    @action("billing", "refund")
    async def refund(params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        ...

A handler may be a plain function or an async one. Plain functions are called directly in the
event loop thread, so they must be quick: blocking work (network, disk, heavy CPU) belongs in an
async handler (or one that hands the work to a thread itself). Its return value, which must be
JSON-able, is the item's `output`; an exception it raises fails the item.

This module holds no registrations of its own (the built-in ones live in
`streams.builtin_handlers`); `import_handler_modules` imports the modules named in
`BATCHWIRE_HANDLER_MODULES`, whose import registers their handlers.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from streams.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionContext:
    """What a handler knows about the item it runs besides its params."""

    batch_id: str
    tenant: str
    item_id: str
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[dict[str, Any], ActionContext], Any]
"""`(params, ctx) -> output`, or an async function returning an awaitable of the output."""

H = TypeVar("H", bound=Callable[..., Any])

_registry: dict[tuple[str, str], Handler] = {}


def action(namespace: str, action: str) -> Callable[[H], H]:
    """Register the decorated function as the handler of `(namespace, action)`.

    Registering the same pair again replaces the earlier handler (with a warning).
    The function is returned unchanged.
    """
    if not isinstance(namespace, str) or not namespace:
        raise ValueError("an action's namespace must be a non-empty string")
    if not isinstance(action, str) or not action:
        raise ValueError("an action's name must be a non-empty string")

    def register(func: H) -> H:
        key = (namespace, action)
        previous = _registry.get(key)
        if previous is not None and previous is not func:
            logger.warning(
                "action %s/%s re-registered: %s replaces %s",
                namespace,
                action,
                _describe(func),
                _describe(previous),
            )
        _registry[key] = func
        return func

    return register


def get_handler(namespace: str, action: str) -> Handler | None:
    """The handler registered for `(namespace, action)`, or None."""
    return _registry.get((namespace, action))


def registered_actions() -> list[tuple[str, str]]:
    """Every registered `(namespace, action)` pair, sorted."""
    return sorted(_registry)


def import_handler_modules(modules: Iterable[str]) -> None:
    """Import each named module so that its `@action` decorators register their handlers.

    Names are stripped and blank ones skipped. A module that cannot be imported raises
    `ConfigError` naming it.
    """
    for raw in modules:
        name = raw.strip()
        if not name:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"cannot import handler module {name!r}: {exc}") from exc
        except Exception as exc:
            raise ConfigError(
                f"handler module {name!r} failed while importing: {type(exc).__name__}: {exc}"
            ) from exc


def _describe(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or repr(func)
    return f"{module}.{qualname}"
