"""Static assets served by the worker (the dashboard page)."""
