"""ClickHouse's HTTP interface: one POST per statement, answers in JSONCompact."""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional


class ClickHouseError(Exception):
    """ClickHouse refused a statement (its own message), or could not be reached."""


class ClickHouse:
    def __init__(self, url: str, user: str, password: str, database: str, timeout_s: float = 6 * 3600):
        self.url = url.rstrip("/") + "/"
        self.database = database
        self.timeout_s = timeout_s
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def run(self, sql: str, database: Optional[str] = None) -> list[list[Any]]:
        """Rows of `sql` (none for a statement without a result), in the session's `database`."""
        params = {"database": database or self.database, "default_format": "JSONCompact"}
        request = urllib.request.Request(
            self.url + "?" + urllib.parse.urlencode(params),
            data=sql.encode(),
            headers={"Authorization": self._auth, "Content-Type": "text/plain; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as error:
            raise ClickHouseError(error.read().decode(errors="replace").strip() or str(error)) from None
        except (urllib.error.URLError, OSError) as error:
            raise ClickHouseError(f"cannot reach ClickHouse at {self.url}: {getattr(error, 'reason', error)}") from None
        return json.loads(text)["data"] if text.strip() else []

    def value(self, sql: str, database: Optional[str] = None) -> Any:
        rows = self.run(sql, database)
        return rows[0][0] if rows else None


def string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
