"""URLs as the stack file gives them: read safely, shown without credentials, judged private or public, and the
S3 bucket URL of off-host backups. Below the annotated types (types.py), which read URLs through it."""

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator


def shown_url(url: str) -> str:
    """A URL as an error message may show it: whatever stands before an `@` is masked."""
    return repr(re.sub(r"//[^/]*@", "//***@", url))


def split_url(value: str):
    """A URL's parts, its port read (which checks it); refuses white space and control characters."""
    if any(character.isspace() or character < " " for character in value):
        raise ValueError(f"{shown_url(value)} holds white space or a control character")
    try:
        parts = urlsplit(value)
        return parts, parts.port
    except ValueError as error:
        raise ValueError(f"{shown_url(value)} is not a URL ({error})") from None


# Where plain http stays on a network the operator runs: no router forwards these addresses to the internet, and
# only a private resolver (Docker's, mDNS, a tailnet's) answers these names. Said once, for every such rule.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # CGNAT, which tailnets (Tailscale) number their hosts from
        "169.254.0.0/16",  # link-local
        "127.0.0.0/8",
        "fc00::/7",  # IPv6 unique local
        "fe80::/10",
        "::1/128",
    )
)
PRIVATE_SUFFIXES = (".local", ".internal", ".lan", ".home.arpa", ".ts.net", ".localhost")
PRIVATE_HOSTS = (
    "a single-label name (a Docker hostname), localhost, a private (RFC 1918), CGNAT (100.64/10), link-local or "
    "loopback address, or a name ending in " + ", ".join(PRIVATE_SUFFIXES[:-1])
)


def shown_host(host: str) -> str:
    """A host as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def _address(host: str):
    """The IP address a host is written as (an IPv4-mapped one read as IPv4), or None for a name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def is_loopback_host(host: str) -> bool:
    """`localhost`, or a loopback address (an IPv4-mapped one, `::ffff:127.0.0.1`, included)."""
    host = host.strip("[]").rstrip(".").lower()
    address = _address(host)
    return host == "localhost" or (address is not None and address.is_loopback)


def is_private_url(url: str) -> bool:
    """Whether a URL's host is on a private network (PRIVATE_HOSTS): what plain http may reach beyond dev."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if (address := _address(host)) is not None:
        return any(address in network for network in _PRIVATE_NETWORKS if network.version == address.version)
    # One label of digits is an address to the resolver's inet_aton (`http://134744072` is 8.8.8.8), no name.
    single_label = "." not in host and not re.fullmatch(r"[0-9]+|0x[0-9a-f]+", host)
    return bool(host) and (single_label or host == "localhost" or host.endswith(PRIVATE_SUFFIXES))


S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
S3_URL_FORM = "http[s]://host[:port]/<bucket>[/prefix]"
S3_CREDENTIALS = (
    "drop them from the URL and give the access key and secret key in the variables access_key_var and "
    "secret_key_var name (env layer or stack secret)"
)
_S3_REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


def _s3_bucket_url(value: str) -> str:
    """A path-style S3 bucket and prefix, as MinIO serves it: printed by `plan` and written into ClickHouse's config,
    so it carries no credential and no expiring signature."""
    if "://" not in value:
        raise ValueError(f"{shown_url(value)} is not a URL: write {S3_URL_FORM}")
    parts, _ = split_url(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"{shown_url(value)}: http:// or https:// only (an S3-compatible endpoint), not {parts.scheme}://"
        )
    if "@" in parts.netloc:
        raise ValueError(f"the URL holds credentials (user:password@): {S3_CREDENTIALS}")
    if not parts.hostname:
        raise ValueError(f"{shown_url(value)} names no host: write {S3_URL_FORM}")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        # Never shown: a presigned URL's query holds its signature.
        raise ValueError(
            "a query string or #fragment is not allowed (a signed URL, ?X-Amz-Signature=..., expires): give the "
            f"bucket's own URL, {S3_URL_FORM}, and its keys in access_key_var and secret_key_var"
        )
    bucket = parts.path.removeprefix("/").partition("/")[0]
    if not bucket:
        raise ValueError(f"the bucket is missing: write {parts.scheme}://{parts.netloc}/<bucket>[/prefix]")
    if not S3_BUCKET.fullmatch(bucket):
        raise ValueError(
            f"'{bucket}' is not an S3 bucket name: 3 to 63 lower-case letters, digits, '.' and '-', starting and "
            "ending with a letter or digit"
        )
    return value


def _s3_region(value: str) -> str:
    if not _S3_REGION.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an S3 region: lower-case letters, digits and inner '-' (us-east-1, eu-west-3; "
            "MinIO answers to us-east-1 unless set otherwise)"
        )
    return value


S3BucketURL = Annotated[str, AfterValidator(_s3_bucket_url)]
S3Region = Annotated[str, AfterValidator(_s3_region)]
