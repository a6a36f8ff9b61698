"""Stand-in for clickhouse-server's HTTP interface, in front of the real ClickHouse engine (chdb).

The real server cannot run here and chdb opens no ports; this serves the part of the HTTP interface
backupctl speaks (POST a statement; `database` and `default_format` parameters; Basic auth; an error is a
non-200 answer with ClickHouse's own message) and hands every statement to chdb unchanged. Only the
transport is a stand-in: BACKUP, RESTORE, CHECK TABLE and every query run in ClickHouse's engine.
Debian's clickhouse-server 18.16 shows the same transport against a real server (test_backup.py).

`python tests/chdb_http.py DATA_DIR CONFIG_XML USER PASSWORD`: prints the port once it listens, serves until
stdin closes.
"""

import base64
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    import chdb

    data, config, user, password = sys.argv[1:5]
    connection = chdb.connect(f"file:{data}?config-file={config}")
    lock = threading.Lock()  # one chdb session: statements run one at a time, as `USE` then the statement
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.headers.get("Authorization") != expected:
                self._answer(516, f"Code: 516. DB::Exception: {user}: Authentication failed. (AUTHENTICATION_FAILED)")
                return
            params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            with lock:
                try:
                    if params.get("database"):
                        connection.query(f"USE `{params['database']}`")
                    answer = str(connection.query(sql, params.get("default_format", "TabSeparated")))
                except Exception as error:  # ClickHouse's message, as the server sends it
                    self._answer(500, str(error))
                    return
            self._answer(200, answer)

        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()
    connection.close()


if __name__ == "__main__":
    main()
