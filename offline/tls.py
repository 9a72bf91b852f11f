"""HTTPS and WSS for `make run TLS=1`: a certificate authority made for one run, and the server's
certificate it signs.

Amplify JS opens its real-time connection with `wss://` whatever the GraphQL URL's scheme, so a front
end on Amplify needs the offline server on TLS. No certificate is in the repository and nothing is
installed system-wide: each run makes a CA of its own (a key that never leaves the run's directory), the
server's certificate for the loopback names (`localhost`, `127.0.0.1`, `::1`, and the host it listens
on), and writes the CA's certificate to a file the developer points a client at:
`NODE_EXTRA_CA_CERTS` (Node), `SSL_CERT_FILE` or `REQUESTS_CA_BUNDLE` (Python), or a browser's
certificate settings. The directory (mode 0700) is removed when the server stops.

    with RunCertificate.make("127.0.0.1") as certificate:
        context = certificate.server_context()   # for the HTTP server
        print(certificate.ca_file)               # for the clients
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
VALID_FOR = timedelta(days=7)
"""Longer than any run; short enough that a copied CA file is worth nothing a week later."""


@dataclass
class RunCertificate:
    """The files of one run: the CA's certificate (to trust), the server's chain and key (to serve)."""

    directory: Path
    ca_file: Path
    chain_file: Path
    key_file: Path

    @classmethod
    def make(cls, host: str = "127.0.0.1") -> RunCertificate:
        directory = Path(tempfile.mkdtemp(prefix="booking-offline-tls-"))  # mode 0700
        now = datetime.now(UTC) - timedelta(minutes=5)  # a client's clock a little behind still accepts it
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Booking service offline, this run")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        certificate = cls(directory, directory / "ca.pem", directory / "server.pem", directory / "server.key")
        certificate.ca_file.write_bytes(ca.public_bytes(pem))
        certificate.chain_file.write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
        certificate.key_file.touch(mode=0o600)
        certificate.key_file.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        return certificate

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.chain_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a Python client of this run trusts: this run's CA, and nothing else."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RunCertificate:
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in dict.fromkeys([*LOOPBACK_NAMES, host]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
