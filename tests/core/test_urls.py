"""URLs: which hosts plain http may reach beyond dev, and the off-host backups' S3 URL and region, each refusal
saying what is wrong without echoing a credential or a signature."""

import pytest
from pydantic import TypeAdapter, ValidationError

from components.core.urls import S3BucketURL, S3Region, is_private_url

# Plain http beyond dev only to these (PMOVES's Ollamas, MinIO, its tailnet), never to a host on the internet.
PRIVATE = [
    "http://jetson-ollama:11434/v1", "http://vllm:8000/v1", "http://localhost:8080", "http://LOCALHOST.",
    "http://10.1.2.3/x", "http://172.31.255.1", "http://192.168.1.10:9000/bucket", "http://100.101.0.2:11434",
    "http://169.254.1.1", "http://127.0.0.2", "http://[::1]:80", "http://[fd00::1]/", "http://[fe80::1]/",
    "http://[::ffff:10.0.0.1]/", "http://minio.pmoves.internal:9000/b", "http://nas.local", "http://nas.lan",
    "http://x.home.arpa", "http://box.tail1234.ts.net", "http://app.localhost",
]  # fmt: skip
PUBLIC = [
    "http://api.venice.ai/api/v1", "http://s3.amazonaws.com/bucket", "http://8.8.8.8", "http://100.128.0.1",
    "http://172.32.0.1", "http://[2001:4860::8888]/", "http://[::ffff:8.8.8.8]/", "http://evil.local.example.com",
    "http://internal.example.com", "http://134744072/", "http://0x08080808/", "http://", "not a url",
    "http://[::1/",
]  # fmt: skip


@pytest.mark.parametrize("url", PRIVATE)
def test_a_private_host(url):
    assert is_private_url(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_a_public_host_or_none(url):
    assert not is_private_url(url)


BUCKET_URL = TypeAdapter(S3BucketURL)
S3_REFUSED = [
    ("http://minio:s3cret-pw@minio:9000/bucket", "the URL holds credentials (user:password@): drop them from the URL"),
    ("ftp://x/y", "'ftp://x/y': http:// or https:// only (an S3-compatible endpoint), not ftp://"),
    ("not a url", "'not a url' is not a URL: write http[s]://host[:port]/<bucket>[/prefix]"),
    ("minio:9000/bucket", "'minio:9000/bucket' is not a URL: write http[s]://host[:port]/<bucket>[/prefix]"),
    ("http://minio:9000", "the bucket is missing: write http://minio:9000/<bucket>[/prefix]"),
    ("http://minio:9000/", "the bucket is missing: write http://minio:9000/<bucket>[/prefix]"),
    ("http://minio:9000/b/p?X-Amz-Signature=f00d", "a query string or #fragment is not allowed (a signed URL"),
    ("http://minio:9000/bucket?X-Amz-Signature=f00d", "a query string or #fragment is not allowed (a signed URL"),
    ("http://minio:9000/bucket#x", "a query string or #fragment is not allowed"),
    ("http://minio:9000/Backups", "'Backups' is not an S3 bucket name: 3 to 63 lower-case letters, digits"),
    ("http://:9000/bucket", "'http://:9000/bucket' names no host"),
    ("http://minio:99999/bucket", "'http://minio:99999/bucket' is not a URL (Port out of range"),
]
S3_ACCEPTED = ["http://minio:9000/tensorzero-backups", "https://s3.eu-west-3.amazonaws.com/pmoves.backups/tz/prod/"]


@pytest.mark.parametrize(("url", "message"), S3_REFUSED, ids=[u for u, _ in S3_REFUSED])
def test_an_s3_url_refused_says_what_is_wrong(url, message):
    with pytest.raises(ValidationError) as refused:
        BUCKET_URL.validate_python(url)
    (error,) = refused.value.errors()
    assert error["msg"].removeprefix("Value error, ").startswith(message), error["msg"]
    assert "s3cret-pw" not in error["msg"] and "f00d" not in error["msg"]


@pytest.mark.parametrize("url", S3_ACCEPTED)
def test_an_s3_bucket_url(url):
    assert BUCKET_URL.validate_python(url) == url


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "garage", "not a region!", "US-EAST-1", "-x", ""])
def test_an_s3_region(region):
    valid = region in ("us-east-1", "eu-west-3", "garage")
    try:
        assert TypeAdapter(S3Region).validate_python(region) == region and valid
    except ValidationError as refused:
        assert not valid
        assert f"{region!r} is not an S3 region: lower-case letters, digits and inner '-'" in str(refused)
