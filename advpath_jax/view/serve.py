"""Serve an explorer folder on 127.0.0.1 (the page also opens without a server)."""

from __future__ import annotations

import functools
import http.server
import os


def make_server(directory: str, port: int = 0) -> http.server.ThreadingHTTPServer:
    """A server of ``directory`` bound to 127.0.0.1 (``port`` 0: any free port)."""
    if not os.path.isfile(os.path.join(directory, "index.html")):
        raise FileNotFoundError(f"no explorer in {directory}: index.html is missing")
    handler = functools.partial(_QuietHandler, directory=os.fspath(directory))
    return http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler)


def address(server: http.server.HTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/index.html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(directory: str, port: int = 8000) -> None:
    """Serve ``directory`` until interrupted, printing the address."""
    server = make_server(directory, port)
    print(f"[view] serving {directory} at {address(server)} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
