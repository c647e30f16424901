# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A file server on loopback for the URL paths of checkpoint loading."""
import contextlib
import functools
import http.server
import threading


@contextlib.contextmanager
def serve_folder(folder):
    """Serve ``folder`` on 127.0.0.1; yields ``(base_url, requests)`` where
    ``requests`` lists the paths asked for."""
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_port}', requests
    finally:
        server.shutdown()
        server.server_close()
