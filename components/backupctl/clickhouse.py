"""ClickHouse's HTTP interface: one POST per statement, answers in JSONCompact.

Every call is bounded: connecting takes at most CONNECT_TIMEOUT_S and is tried CONNECT_ATTEMPTS times (nothing
has been sent yet, so a retry cannot run a statement twice); the answer is awaited at most the statement's
budget (a BACKUP or RESTORE runs long; the schedule gives it no more than its interval).
"""

import base64
import http.client
import json
import time
import urllib.parse
from typing import Any, Optional

CONNECT_TIMEOUT_S = 10
CONNECT_ATTEMPTS = 3
BACKOFF_S = (1, 3)  # before the second and third attempt
DEFAULT_TIMEOUT_S = 6 * 3600


class ClickHouseError(Exception):
    """ClickHouse refused a statement (its own message), or could not be reached."""


class ClickHouse:
    def __init__(self, url: str, user: str, password: str, database: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.url = url.rstrip("/") + "/"
        self.database = database
        self.timeout_s = timeout_s
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def _connect(self) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self.url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        for attempt in range(CONNECT_ATTEMPTS):
            connection = kind(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
            try:
                connection.connect()
                return connection
            except OSError as error:
                connection.close()
                if attempt + 1 == CONNECT_ATTEMPTS:
                    raise ClickHouseError(
                        f"cannot reach ClickHouse at {self.url}: {error} ({CONNECT_ATTEMPTS} attempts)"
                    ) from None
                time.sleep(BACKOFF_S[attempt])
        raise AssertionError("unreachable")

    def run(self, sql: str, database: Optional[str] = None, timeout_s: Optional[float] = None) -> list[list[Any]]:
        """Rows of `sql` (none for a statement without a result), in the session's `database`."""
        params = {"database": database or self.database, "default_format": "JSONCompact"}
        path = urllib.parse.urlsplit(self.url).path + "?" + urllib.parse.urlencode(params)
        budget = timeout_s or self.timeout_s
        connection = self._connect()
        connection.sock.settimeout(budget)
        try:
            connection.request(
                "POST",
                path,
                body=sql.encode(),
                headers={"Authorization": self._auth, "Content-Type": "text/plain; charset=utf-8"},
            )
            answer = connection.getresponse()
            text = answer.read().decode(errors="replace")
        except TimeoutError:
            raise ClickHouseError(f"ClickHouse at {self.url} did not answer within {budget:g}s") from None
        except (OSError, http.client.HTTPException) as error:
            raise ClickHouseError(f"lost ClickHouse at {self.url}: {error}") from None
        finally:
            connection.close()
        if answer.status != 200:
            raise ClickHouseError(text.strip() or f"HTTP {answer.status} {answer.reason}")
        return json.loads(text)["data"] if text.strip() else []

    def value(self, sql: str, database: Optional[str] = None) -> Any:
        rows = self.run(sql, database)
        return rows[0][0] if rows else None


def string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
