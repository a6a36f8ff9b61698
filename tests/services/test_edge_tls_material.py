"""What `validate` accepts for the edge's TLS must start: the certificate and key are parsed and matched with
`cryptography`, and each kind of bad material `validate` refuses is shown refused by the real consumer too
(nginx -t on the edge's rendered files, edge_rig.py), while the good pair passes both.
"""

import datetime
import subprocess
import tempfile
from functools import partial
from pathlib import Path

import pytest
from conftest import MINIMAL_CATALOG, MINIMAL_ENV, make_project, minimal_config, refusals
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from edge_rig import nginx_t, write_tls

from components.core.errors import ConfigError
from components.core.plans import Endpoint
from components.services import edge
from components.services.ui import SERVICE as UI
from components.stack.loader import load

TLS_BY_VAR = {"enabled": True, "certificate_var": "EDGE_TLS_CERT", "key_var": "EDGE_TLS_KEY"}
GARBAGE = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key, password: bytes = b"") -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def certificate_pem(key, not_before: datetime.datetime, not_after: datetime.datetime) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM).decode()


def edge_with_tls(root, certificate: str, key: str, **tls):
    quoted = {name: value.replace("\n", "\\n") for name, value in (("CERT", certificate), ("KEY", key))}
    env = MINIMAL_ENV + f'EDGE_TLS_CERT="{quoted["CERT"]}"\nEDGE_TLS_KEY="{quoted["KEY"]}"\n'
    config = minimal_config(edge={"tls": {**TLS_BY_VAR, **tls}})
    project = make_project(root, config, {"catalog.toml": MINIMAL_CATALOG, "env/env.shared": env})
    return load("test", project_dir=project)


def problems_of(root, certificate: str, key: str, **tls) -> list[str]:
    return refusals(lambda: edge_with_tls(root, certificate, key, **tls))


def nginx_starts(deployment, tmp_path, certificate: str, key: str):
    """nginx -t on the edge's rendered files with this certificate and key where the container has them."""
    layout = edge.Layout(tls_certificate=str(tmp_path / "tls" / "cert.pem"), tls_key=str(tmp_path / "tls" / "key.pem"))
    write_tls(tmp_path, certificate, key)
    files = edge.config_files(
        deployment, Endpoint(edge.GATEWAY_BEHIND_EDGE_ALIAS, 3000), Endpoint(UI.alias, UI.port), layout=layout
    )
    return nginx_t(files, tmp_path / "nginx", deployment)


@pytest.fixture(scope="module")
def good(self_signed, tmp_path_factory):
    """A valid pair (openssl's self-signed certificate) and the deployment `validate` accepts with it."""
    return self_signed, edge_with_tls(tmp_path_factory.mktemp("good-tls"), *self_signed)


def test_a_good_pair_passes_validate_and_nginx(good, tmp_path):
    (certificate, key), deployment = good
    checked = nginx_starts(deployment, tmp_path, certificate, key)
    assert checked.returncode == 0, checked.stderr


def other_key() -> str:
    return key_pem(new_key())


def weak_rsa_pair() -> tuple[str, str]:
    """A matching pair, in date, whose RSA key is 1024 bits: OpenSSL's default security level refuses it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    now = datetime.datetime.now(datetime.timezone.utc)
    return certificate_pem(key, now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)), key_pem(key)


def sha1_signed_pair() -> tuple[str, str]:
    """A leaf in date that its CA signed with SHA-1 (by openssl: cryptography will not sign with SHA-1), then the
    CA in the chain, and the leaf's key."""
    with tempfile.TemporaryDirectory() as scratch:
        openssl = partial(subprocess.run, check=True, capture_output=True, cwd=scratch)
        ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl(["openssl", "req", "-x509", *ec_key, "-days", "2", "-subj", "/CN=authority", "-keyout", "ca.key",
                 "-out", "ca.pem"])  # fmt: skip
        openssl(["openssl", "req", *ec_key, "-subj", "/CN=localhost", "-keyout", "leaf.key", "-out", "leaf.csr"])
        openssl(["openssl", "x509", "-req", "-sha1", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", "leaf.pem"])  # fmt: skip
        folder = Path(scratch)
        return (folder / "leaf.pem").read_text() + (folder / "ca.pem").read_text(), (folder / "leaf.key").read_text()


# Each: (id, certificate, key) built from the good pair, the problem `validate` names, and nginx's refusal.
REFUSED_BY_NGINX = [
    ("garbage-pem", lambda c, k: (GARBAGE, k), "edge.tls.certificate_var: EDGE_TLS_CERT holds no PEM certificate"),
    ("key-as-certificate", lambda c, k: (k, k), "edge.tls.certificate_var: EDGE_TLS_CERT holds a private key"),
    ("pair-mismatch", lambda c, k: (c, other_key()), "edge.tls.key_var: EDGE_TLS_KEY does not match the certificate"),
    ("certificate-as-key", lambda c, k: (c, c), "edge.tls.key_var: EDGE_TLS_KEY holds no PEM private key"),
    ("rsa-1024", lambda c, k: weak_rsa_pair(), "edge.tls.key_var: EDGE_TLS_KEY is a 1024-bit RSA key: OpenSSL refuses"),
    ("sha1-signed", lambda c, k: sha1_signed_pair(), "edge.tls.certificate_var: EDGE_TLS_CERT is signed with SHA1"),
    # Only the exact offline placeholder goes unparsed: a value that merely begins like one is read as PEM.
    (
        "placeholder-lookalike",
        lambda c, k: ("offline-placeholder-cert", k),
        "edge.tls.certificate_var: EDGE_TLS_CERT holds no PEM",
    ),
]


@pytest.mark.parametrize("make, problem", [pytest.param(m, p, id=i) for i, m, p in REFUSED_BY_NGINX])
def test_tls_material_nginx_refuses_is_refused_by_validate(good, tmp_path, make, problem):
    (certificate, key), deployment = good
    bad_certificate, bad_key = make(certificate, key)
    assert any(line.startswith(problem) for line in problems_of(tmp_path / "p", bad_certificate, bad_key))
    checked = nginx_starts(deployment, tmp_path, bad_certificate, bad_key)
    assert checked.returncode != 0, "nginx -t accepted what validate refuses"
    assert "emerg" in checked.stderr


def test_an_encrypted_key_is_refused_since_nginx_cannot_ask_its_passphrase(tmp_path):
    key = new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = certificate_pem(key, now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    found = problems_of(tmp_path, certificate, key_pem(key, b"passphrase"))
    assert found == ["edge.tls.key_var: EDGE_TLS_KEY is an encrypted private key: nginx cannot ask for its passphrase"]


@pytest.mark.parametrize(
    "start_days, end_days, problem",
    [(-30, -1, "expired on"), (2, 30, "is not valid before")],
    ids=["expired", "not-yet-valid"],
)
def test_a_certificate_out_of_date_is_refused(tmp_path, start_days, end_days, problem):
    key = new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    days = datetime.timedelta(days=1)
    certificate = certificate_pem(key, now + start_days * days, now + end_days * days)
    found = problems_of(tmp_path, certificate, key_pem(key))
    assert len(found) == 1 and found[0].startswith(f"edge.tls.certificate_var: EDGE_TLS_CERT {problem}"), found


def test_a_relative_certificate_file_is_refused(tmp_path):
    found = problems_of(
        tmp_path, "", "", certificate_var=None, key_var=None, certificate_file="tls/c.pem", key_file="/k"
    )
    assert any("certificate_file 'tls/c.pem' must be an absolute path on the Docker host" in line for line in found)


def test_host_files_on_this_machine_are_read_and_matched(good, tmp_path):
    (certificate, _), _ = good
    write_tls(tmp_path, certificate, other_key())
    found = problems_of(
        tmp_path / "p",
        "",
        "",
        certificate_var=None,
        key_var=None,
        certificate_file=str(tmp_path / "tls" / "cert.pem"),
        key_file=str(tmp_path / "tls" / "key.pem"),
    )
    assert found == [f"edge.tls.key_file: {tmp_path / 'tls' / 'key.pem'} does not match the certificate (the first "
                     "one of the chain is the server's)"]  # fmt: skip


def test_a_der_file_is_named_with_what_nginx_reads(good, tmp_path):
    """A binary (DER) certificate on this machine: the file and what to do, not a decoding error."""
    (certificate, key), _ = good
    write_tls(tmp_path, certificate, key)
    der = x509.load_pem_x509_certificate(certificate.encode()).public_bytes(serialization.Encoding.DER)
    (tmp_path / "tls" / "cert.pem").write_bytes(der)
    files = {"certificate_file": str(tmp_path / "tls" / "cert.pem"), "key_file": str(tmp_path / "tls" / "key.pem")}
    found = problems_of(tmp_path / "p", "", "", certificate_var=None, key_var=None, **files)
    assert found == [f"edge.tls.certificate_file: {files['certificate_file']} is not text: nginx reads PEM, not DER "
                     "(`openssl x509` or `openssl pkey` with `-inform der` converts it)"]  # fmt: skip


def test_bad_tls_material_is_named_where_it_was_given(tmp_path):
    """The env layer's file and line that holds the value, not the stack file that names the variable."""
    with pytest.raises(ConfigError) as failure:
        edge_with_tls(tmp_path, GARBAGE, GARBAGE)
    files = {p.key: p.file for p in failure.value.problems}
    assert files["edge.tls.certificate_var"].startswith("env/") and ":" in files["edge.tls.certificate_var"], files
