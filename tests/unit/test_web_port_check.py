"""A worker refuses a web port another process listens on before it starts (faust binds it
last, after joining its groups, and failed with a traceback)."""

from __future__ import annotations

import socket

import pytest

from streams.errors import InUse
from streams.worker import check_port_free


def test_a_port_another_process_listens_on_is_in_use_and_a_free_one_is_not() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        with pytest.raises(InUse, match=f"127.0.0.1:{port} \\(BATCHWIRE_WEB_PORT\\) is in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # closed: free again
