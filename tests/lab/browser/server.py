"""Serve peer.html and print what the page reports to /log, one line each on stdout."""

import functools
import http.server
import sys
import urllib.parse
from pathlib import Path


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/log?"):
            print(urllib.parse.unquote(self.path[5:]), flush=True)
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


server = http.server.ThreadingHTTPServer(
    ("127.0.0.1", int(sys.argv[1])), functools.partial(Handler, directory=str(Path(__file__).parent))
)
print("serving", flush=True)
server.serve_forever()
