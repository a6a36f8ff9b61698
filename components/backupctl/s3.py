"""The S3 calls retention and listing need, for any S3-compatible store, signed with Signature Version 4.

ClickHouse itself writes and reads the backups (`BACKUP ... TO S3(url)`, credentials from its own
config); this client only lists them, reads their `.backup` descriptions and deletes what retention
drops. Path-style URLs (`http://host:port/bucket/prefix`), as MinIO serves them.

Every request is bounded: TIMEOUT_S for connecting and for each read, ATTEMPTS tries for a store that does
not answer or answers 5xx/429 (each call is idempotent), none for a refusal (403, 400): at most about a minute
and a half in all, so an off-host store that is down fails the run (and raises the backup alert) instead of
stalling the schedule.
"""

import base64
import datetime
import hashlib
import hmac
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Optional

NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TIMEOUT_S = 20
ATTEMPTS = 3
BACKOFF_S = (1, 3)  # before the second and third attempt
RETRIED_STATUS = {429, 500, 502, 503, 504}


class S3Error(Exception):
    pass


def _quote(value: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(value, safe=safe)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Location:
    """`http[s]://host[:port]/bucket[/prefix]` split into its parts."""

    endpoint: str  # scheme://host[:port]
    bucket: str
    prefix: str  # without leading or trailing slash; may be empty

    @classmethod
    def parse(cls, url: str) -> "Location":
        parts = urllib.parse.urlsplit(url)
        if "@" in parts.netloc:  # never echoed: its userinfo is a credential
            raise S3Error("the off-host URL holds credentials (user:password@): give them as the access and secret key")
        path = parts.path.strip("/")
        if parts.scheme not in ("http", "https") or not parts.netloc or not path:
            raise S3Error(f"'{url}' is not an S3 URL of the form http[s]://host[:port]/bucket[/prefix]")
        bucket, _, prefix = path.partition("/")
        return cls(f"{parts.scheme}://{parts.netloc}", bucket, prefix.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def url(self, *parts: str) -> str:
        return f"{self.endpoint}/{self.bucket}/{self.key(*parts)}"


class S3:
    def __init__(
        self, url: str, access_key: str, secret_key: str, region: str = "us-east-1", timeout_s: float = TIMEOUT_S
    ):
        self.location = Location.parse(url)
        self._access_key = access_key
        self._secret_key = secret_key
        self.region = region
        self.timeout_s = timeout_s

    def _request(
        self, method: str, key: str, query: Optional[dict[str, str]] = None, body: bytes = b"", headers=None
    ) -> bytes:
        query = query or {}
        path = "/" + _quote(self.location.bucket) + ("/" + _quote(key, safe="-_.~/") if key else "")
        host = urllib.parse.urlsplit(self.location.endpoint).netloc
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": stamp, **(headers or {})}
        names = sorted(name.lower() for name in signed)
        lowered = {name.lower(): value for name, value in signed.items()}
        canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))
        canonical = "\n".join(
            [method, path, canonical_query, "".join(f"{n}:{lowered[n].strip()}\n" for n in names), ";".join(names)]
            + [payload]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key_bytes = _hmac(("AWS4" + self._secret_key).encode(), day)
        for part in (self.region, "s3", "aws4_request"):
            key_bytes = _hmac(key_bytes, part)
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature}"
        )
        url = self.location.endpoint + path + ("?" + canonical_query if canonical_query else "")
        request = urllib.request.Request(
            url, data=body or None, method=method, headers={**signed, "Authorization": authorization}
        )
        request.remove_header("Host")  # urllib sets it from the URL, identical to the signed one
        for attempt in range(ATTEMPTS):
            last = attempt + 1 == ATTEMPTS
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    return answer.read()
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    raise FileNotFoundError(key) from None
                if error.code not in RETRIED_STATUS or last:
                    said = " ".join(error.read().decode(errors="replace").split())[:300]  # one log line
                    raise S3Error(f"{method} {url}: HTTP {error.code}: {said}") from None
            except (urllib.error.URLError, OSError) as error:
                if last:
                    reason = getattr(error, "reason", error)
                    tried = f"{ATTEMPTS} attempts, {self.timeout_s:g}s each"
                    raise S3Error(f"cannot reach {self.location.endpoint}: {reason} ({tried})") from None
            time.sleep(BACKOFF_S[attempt])
        raise AssertionError("unreachable")

    def _list(self, prefix: str, delimiter: str = "") -> tuple[list[tuple[str, int]], list[str]]:
        """(key, size) of every object under `prefix`, and the common prefixes when `delimiter` is given."""
        objects, prefixes, token = [], [], None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if delimiter:
                query["delimiter"] = delimiter
            if token:
                query["continuation-token"] = token
            root = ElementTree.fromstring(self._request("GET", "", query))
            objects += [
                (item.findtext(f"{NAMESPACE}Key"), int(item.findtext(f"{NAMESPACE}Size") or 0))
                for item in root.findall(f"{NAMESPACE}Contents")
            ]
            prefixes += [item.findtext(f"{NAMESPACE}Prefix") for item in root.findall(f"{NAMESPACE}CommonPrefixes")]
            if root.findtext(f"{NAMESPACE}IsTruncated") != "true":
                return objects, prefixes
            token = root.findtext(f"{NAMESPACE}NextContinuationToken")

    def directories(self) -> list[str]:
        """Names directly under the location's prefix (each backup is one)."""
        base = self.location.key() + "/" if self.location.prefix else ""
        _, prefixes = self._list(base, "/")
        return sorted(p[len(base) :].strip("/") for p in prefixes)

    def get(self, *parts: str) -> bytes:
        return self._request("GET", self.location.key(*parts))

    def keys(self, directory: str) -> list[tuple[str, int]]:
        objects, _ = self._list(self.location.key(directory) + "/")
        return objects

    def delete_directory(self, directory: str) -> int:
        """Delete every object under `directory`; returns how many."""
        keys = [key for key, _ in self.keys(directory)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            body = (
                "<Delete><Quiet>true</Quiet>"
                + "".join(f"<Object><Key>{_xml(key)}</Key></Object>" for key in batch)
                + "</Delete>"
            ).encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            headers = {"Content-MD5": md5, "Content-Type": "application/xml"}
            answer = self._request("POST", "", {"delete": ""}, body, headers)
            errors = ElementTree.fromstring(answer).findall(f"{NAMESPACE}Error") if answer.strip() else []
            if errors:
                raise S3Error(f"could not delete {len(errors)} objects of {directory}")
        return len(keys)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
