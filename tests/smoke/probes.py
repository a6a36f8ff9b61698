"""Bounded waits and HTTP probes: every failure names the service, the endpoint and what was seen."""

import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

import httpx
import pytest

from components.operate.smoke_outputs import ClickHouseAccess, StackOutputs

T = TypeVar("T")

# One check waits at most this share of the budget: a broken service cannot starve the checks after it.
CHECK_SHARE = 0.25
ATTEMPT_TIMEOUT_S = 5.0
FIRST_DELAY_S = 0.2
MAX_DELAY_S = 2.0
SHOWN_CHARS = 300
# What `shown` cuts is masked first: a credential cut in half no longer matches its mask. Set by Budget, which
# every check of a run shares.
_redact: Callable[[str], str] = str
REACH_TIMEOUT_S = 10.0


class NotYet(Exception):
    """What an attempt saw that is not (yet) what the check wants."""


class Refused(Exception):
    """Nothing listens where the outputs say a service is: an answer, not a reason to wait."""

    def __init__(self, address: str, message: str):
        super().__init__(message)
        self.address = address


class Budget:
    """One deadline for the whole run; each check retries with backoff inside its share of it."""

    def __init__(self, deadline: float, total: float, redact: Callable[[str], str]):
        self.deadline = deadline
        self.total = total
        self.redact = redact
        global _redact
        _redact = redact
        self.refused: dict[str, str] = {}  # host:port -> the check that found nothing listening there first

    @property
    def remaining(self) -> float:
        return max(0.0, self.deadline - time.time())

    def fail(self, service: str, endpoint: str, seen: str, cause: str = "") -> None:
        """Fails the check; `cause` is what most likely went wrong, when the check knows it."""
        because = f". Likely cause: {cause}" if cause else ""
        pytest.fail(self.redact(f"{service}: {endpoint}: {seen}{because}"), pytrace=False)

    def wait(
        self,
        attempt: Callable[[float], T],
        *,
        service: str,
        endpoint: str,
        attempt_timeout: float = ATTEMPT_TIMEOUT_S,
    ) -> T:
        """`attempt(timeout)` until it returns instead of raising NotYet; fails naming what it saw last."""
        if self.remaining <= 0:
            self.fail(service, endpoint, f"not checked: the smoke budget of {self.total:g}s was spent before")
        started = time.time()
        window_end = started + min(self.remaining, self.total * CHECK_SHARE)
        delay, attempts, seen = FIRST_DELAY_S, 0, ""
        while True:
            attempts += 1
            timeout = min(attempt_timeout, max(0.2, window_end - time.time()))
            try:
                return attempt(timeout)
            except NotYet as not_yet:
                seen = str(not_yet)
            except Refused as refused:
                first = self.refused.setdefault(refused.address, f"{service}: {endpoint}")
                echo = "" if first == f"{service}: {endpoint}" else f" (first refused to {first})"
                self.fail(service, endpoint, f"{refused}{echo}", "nothing listens there: is the container running?")
            now = time.time()
            if now >= window_end:
                break
            time.sleep(min(delay, window_end - now))  # the last attempt lands on the window's end
            delay = min(delay * 2, MAX_DELAY_S)
        tries = f"{attempts} attempts over {time.time() - started:.1f}s" if attempts > 1 else "1 attempt"
        self.fail(service, endpoint, f"{seen} ({tries})")


def shown(text: str) -> str:
    flat = _redact(" ".join(text.split()))
    return flat if len(flat) <= SHOWN_CHARS else flat[:SHOWN_CHARS] + "..."


def seen(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {shown(response.text) or '(empty body)'}"


def request(client: httpx.Client, method: str, url: str, timeout: float, **kwargs) -> httpx.Response:
    """One HTTP request; a transport error becomes NotYet with what happened."""
    try:
        return client.request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        raise NotYet(f"no answer within {timeout:.1f}s") from None
    except httpx.ConnectError as error:
        if is_refusal(error):
            address = httpx.URL(url).netloc.decode()
            raise Refused(address, f"cannot connect: connection refused by {address}") from None
        raise NotYet(f"cannot connect ({type(error).__name__}: {error})") from None
    except httpx.HTTPError as error:
        raise NotYet(f"cannot connect ({type(error).__name__}: {error})") from None


def is_refusal(error: BaseException) -> bool:
    """Whether a connection error is a refusal (nothing listens), along the chain of causes."""
    while error is not None:
        if isinstance(error, ConnectionRefusedError) or "Connection refused" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def wait_until_ok(budget: Budget, http: httpx.Client, service: str, url: str) -> None:
    """GET `url` until it answers 200."""

    def attempt(timeout):
        response = request(http, "GET", url, timeout)
        if response.status_code != 200:
            raise NotYet(seen(response))

    budget.wait(attempt, service=service, endpoint=f"GET {url}")


def json_of(response: httpx.Response, expect_status: Optional[int] = 200):
    if expect_status is not None and response.status_code != expect_status:
        raise NotYet(seen(response))
    try:
        return response.json()
    except ValueError:
        raise NotYet(f"HTTP {response.status_code} but not JSON: {shown(response.text)}") from None


def endpoint(outputs: StackOutputs, role: str) -> str:
    if role not in outputs.endpoints:
        pytest.skip(f"{role}: not published by this stack (no endpoints.{role} in the outputs)")
    return outputs.endpoints[role].rstrip("/")


def query(client: httpx.Client, access: ClickHouseAccess, sql: str, timeout: float) -> str:
    """One query over ClickHouse's HTTP interface, as the outputs' user, in the outputs' database."""
    response = request(
        client,
        "POST",
        access.url + "/",
        timeout,
        params={"database": access.database},
        content=sql,
        auth=(access.user, access.password),
    )
    if response.status_code != 200:
        raise NotYet(f"`{sql}` as user {access.user}: HTTP {response.status_code}: {shown(response.text)}")
    return response.text.strip()


# The official image's variables, so the password never leaves the container; "$1" the database (empty: the
# container's own), "$2" the query: both passed as arguments, never spliced into the script.
IN_CONTAINER = (
    'clickhouse-client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" '
    '--database "${1:-$CLICKHOUSE_DB}" --query "$2"'
)


def query_in_container(name: str, host: str, database: str, sql: str, timeout: float) -> str:
    """One query with `docker exec <name> clickhouse-client`, as the container's own user."""
    command = ["docker", "--host", host, "exec", name, "sh", "-c", IN_CONTAINER, "sh", database, sql]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NotYet(f"no answer within {timeout:.1f}s") from None
    if done.returncode != 0:
        raise NotYet(f"`{sql}` failed: {shown(done.stderr or done.stdout)}")
    return done.stdout.strip()


@dataclass(frozen=True)
class ClickHouseQueries:
    """How this run asks ClickHouse a query: over HTTP when it is published, else inside its container when
    its Docker host answers (as in prod, where ClickHouse is not published)."""

    ask: Optional[Callable[[str, float], str]]  # (sql, timeout) -> the answer's text; NotYet when it fails
    where: str = ""  # the endpoint, as failures name it
    why_not: str = ""  # why no query can be asked from here (the checks skip)


def how_to_query(outputs: StackOutputs, http: httpx.Client, docker_hosts: "DockerHosts") -> ClickHouseQueries:
    access = outputs.clickhouse()
    container, host = outputs.containers.get("clickhouse"), outputs.docker_hosts.get("clickhouse")
    if "clickhouse" in outputs.endpoints and access is not None:
        return ClickHouseQueries(
            lambda sql, timeout: query(http, access, sql, timeout), f"{access.url} database {access.database}"
        )
    if container and host and not docker_hosts.why_not(host):
        database = access.database if access is not None else ""
        return ClickHouseQueries(
            lambda sql, timeout: query_in_container(container, host, database, sql, timeout),
            f"docker exec {container} on {host}" + (f" database {database}" if database else ""),
        )
    return ClickHouseQueries(None, why_not="ClickHouse is not published, and its container cannot be inspected here")


class DockerHosts:
    """Whether each Docker host answers from here, asked once each."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.answers: dict[str, str] = {}

    def why_not(self, url: str) -> str:
        """'' when the host answers, else why not."""
        if url not in self.answers:
            self.answers[url] = self._ask(url)
        return self.answers[url]

    def _ask(self, url: str) -> str:
        if shutil.which("docker") is None:
            return "the docker CLI is not installed here"
        timeout = min(REACH_TIMEOUT_S, max(self.budget.remaining, 1.0))
        try:
            done = subprocess.run(
                ["docker", "--host", url, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return f"no answer within {timeout:g}s"
        return "" if done.returncode == 0 else shown(done.stderr)
