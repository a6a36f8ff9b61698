"""TLS material read the way nginx reads it: a PEM certificate chain and its unencrypted private key.

`validate` runs these on what the edge would be given, so material nginx refuses at start (garbage, a key
where the certificate belongs, a pair that does not match, an encrypted key nginx cannot ask a passphrase
for) or that no client accepts (expired, not yet valid) is refused before any resource exists.
"""

import datetime
from typing import Optional

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
BROKEN_DIGESTS = ("md5", "sha1")  # a leaf signed with one is refused by clients, though nginx starts
MIN_RSA_BITS = 2048  # OpenSSL's default security level (2) refuses shorter RSA keys at nginx's start


def _signature_digest(certificate: x509.Certificate) -> Optional[str]:
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return algorithm.name if algorithm else None  # Ed25519 and Ed448 sign without a separate digest


def _certificates(text: str) -> tuple[list[x509.Certificate], Optional[str]]:
    if "PRIVATE KEY-----" in text:
        return [], "holds a private key, not a certificate"
    try:
        found = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return [], "holds no PEM certificate that parses (-----BEGIN CERTIFICATE----- ...)"
    return found, None


def _private_key(text: str):
    try:
        return serialization.load_pem_private_key(text.encode(), password=None), None
    except TypeError:
        return None, "is an encrypted private key: nginx cannot ask for its passphrase"
    except (ValueError, UnsupportedAlgorithm):
        return None, "holds no PEM private key that parses (-----BEGIN PRIVATE KEY----- ...)"


def tls_problems(
    certificate: str, key: str, now: Optional[datetime.datetime] = None
) -> tuple[Optional[str], Optional[str]]:
    """(problem with the certificate, problem with the key), each None when fine: parsed, matched, in date."""
    certificates, certificate_problem = _certificates(certificate)
    private_key, key_problem = _private_key(key)
    if certificate_problem is None:
        leaf, now = certificates[0], now or datetime.datetime.now(datetime.timezone.utc)
        if leaf.not_valid_after_utc <= now:
            certificate_problem = f"expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        elif leaf.not_valid_before_utc > now:
            certificate_problem = f"is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        elif (digest := _signature_digest(leaf)) in BROKEN_DIGESTS:
            certificate_problem = f"is signed with {digest.upper()}, which browsers and TLS libraries refuse"
        elif key_problem is None and leaf.public_key().public_bytes(*_SPKI) != private_key.public_key().public_bytes(
            *_SPKI
        ):
            key_problem = "does not match the certificate (the first one of the chain is the server's)"
    if key_problem is None and isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size < MIN_RSA_BITS:
        key_problem = f"is a {private_key.key_size}-bit RSA key: OpenSSL refuses one under {MIN_RSA_BITS} bits"
    return certificate_problem, key_problem
