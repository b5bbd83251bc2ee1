"""``fyp serve --workers N``'s supervisor: uvicorn's, told apart when it stops by itself.

uvicorn's multi-process supervisor stops the whole server, and returns as if asked to, when a
worker fails its start-up (it notices at its next health check). A server that stopped by
itself must not exit with status 0, or a process manager that restarts only on failure leaves
it down; ``run_workers`` says which of the two happened.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

# The signals that ask the server to stop (uvicorn's supervisor also handles SIGHUP, which
# restarts the workers, and SIGTTIN/SIGTTOU, which add or remove one).
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def run_workers(config: uvicorn.Config) -> bool:
    """Serve ``config`` (an import string, ``config.workers`` > 1) with uvicorn's supervisor
    until it stops; True when a stop signal stopped it, False when it stopped by itself."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    class Supervisor(Multiprocess):
        asked_to_stop = False

        def handle_signals(self) -> None:
            if STOP_SIGNALS.intersection(self.signal_queue):
                self.asked_to_stop = True
            super().handle_signals()

    supervisor = Supervisor(config, sockets=[config.bind_socket()])
    try:
        supervisor.run()
    except KeyboardInterrupt:  # as uvicorn.run: a second Ctrl-C
        return True
    return supervisor.asked_to_stop
