"""A stand-in OTLP/HTTP collector for the benchmark servers: accepts and forgets.

The servers' ``BatchSpanProcessor`` really encodes and posts protobuf
batches; this process only answers them, so the export costs the server what
it would in production and the sink costs the machine next to nothing. Run:
``python -m benchmarks.otlp_sink PORT``; it prints ``ready`` once listening.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Sink(BaseHTTPRequestHandler):
    # A collector keeps the exporter's connection open between batches;
    # BaseHTTPRequestHandler's default HTTP/1.0 would close it after each
    # one, charging the server a TCP connect per export.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # An empty ExportTraceServiceResponse is zero bytes of protobuf.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), _Sink)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
