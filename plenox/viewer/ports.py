"""The check that the viewer's port is free (viser itself would silently move to the next free port)."""

import socket

from plenox.errors import ViewerError


def check_port(host: str, port: int) -> None:
    """Raise ViewerError unless a server can listen on ``host``:``port`` right now."""
    if not 0 < port < 65536:
        raise ViewerError(f"port {port} is out of range (1-65535)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ViewerError(f"cannot resolve host {host!r} ({err.strerror})") from None
    with socket.socket(family, kind, proto) as sock:
        # Same option the server sets, so a port lingering in TIME_WAIT counts as free, as it will be.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            raise ViewerError(f"{host}:{port} is not available ({err.strerror}); "
                              f"choose another port with --port") from None
