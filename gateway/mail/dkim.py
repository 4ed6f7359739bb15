"""DKIM: sign outgoing mail (RFC 6376, with dkimpy), make keys and their DNS records.

The transports call `DkimSigner.sign` on the exact bytes they are about to send, after
the last change to the message, with one signature per configured key (two while a key
is rotated). Signing is rsa-sha256, relaxed headers and simple body (relaxed body
canonicalization costs 12 times as much on a 25 MB message: bench/dkim_signing.py; MTAs
refold headers but leave bodies alone), with d= the gateway's domain, which
is also the domain of every From and envelope sender the gateway uses, so DMARC aligns.
From, Subject, Date, Message-ID, To, Cc, Reply-To, In-Reply-To and References are
signed once more than they occur (absent ones too), so nobody can add one without
breaking the signature.

dkimpy canonicalizes, hashes and writes the header; only the RSA step is done by OpenSSL
(cryptography): dkimpy's own pure-Python RSA took 8 to 15 ms per signature with a 2048-bit
key, more than all the rest of a relay (bench/dkim_signing.py).

The signature's t= is the real time of signing (dkimpy reads it from the system clock):
it is a wire timestamp, like a Received header, not a time the gateway decides with.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from gateway.settings import DkimSettings

log = logging.getLogger(__name__)

MIN_KEY_BITS = 1024  # RFC 8301: verifiers must not accept less
DEFAULT_KEY_BITS = 2048
TXT_STRING_MAX = 255  # one <character-string> of a TXT record (RFC 1035)
SIGNED_HEADERS = frozenset(dkim.DKIM.SHOULD) | {b"auto-submitted"}
OVERSIGNED_HEADERS = frozenset({b"from", b"subject", b"date", b"message-id", b"to", b"cc", b"reply-to",
                                b"in-reply-to", b"references"})


_SELECTOR_RE = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def is_selector(name: str) -> bool:
    """A selector is one DNS label: letters, digits and '-', at most 63 characters."""
    return bool(_SELECTOR_RE.match(name))


class KeyProblem(ValueError):
    """A key file that cannot be used, with a message fit for one line."""


@dataclass(frozen=True)
class SigningKey:
    selector: str
    private_pem: bytes
    bits: int

    @cached_property
    def openssl(self) -> rsa.RSAPrivateKey:
        """The key as OpenSSL holds it (loaded once)."""
        return serialization.load_pem_private_key(self.private_pem, password=None)


class _OpenSslDkim(dkim.DKIM):
    """dkimpy's signer, its RSA step done by OpenSSL. The header is built as dkimpy 1.1's
    `gen_header` builds it (tests verify the result with dkimpy)."""

    def __init__(self, raw: bytes, key: SigningKey) -> None:
        super().__init__(raw, linesep=b"\r\n")
        self._key = key

    def gen_header(self, fields, include_headers, canon_policy, header_name, pk, standardize=False):
        if self.signature_algorithm != b"rsa-sha256" or standardize:
            return super().gen_header(fields, include_headers, canon_policy, header_name, pk, standardize)
        value = dkim.fold(b"; ".join(b"=".join(x) for x in fields), namelen=len(header_name), linesep=b"\r\n")
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hasher = dkim.HashThrough(self.hasher(), self.debug_content)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(hasher, canon_policy, headers, include_headers,
                                                (header_name, b" " + value), dict(fields))
        signature = self._key.openssl.sign(hasher.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        index = [i for i, (name, _) in enumerate(fields) if name == b"b"][0]
        fields[index] = (b"b", base64.b64encode(signature))
        return dkim.fold(b"; ".join(b"=".join(x) for x in fields) + self.linesep, namelen=len(header_name),
                         linesep=self.linesep)


def read_private_key(path: Path) -> SigningKey:
    """Read and check one PEM RSA private key file (selector filled in by the caller).

    Refused: a missing or unreadable file, one that others than its owner and group may
    read (as OpenDKIM does), anything but an RSA key, a key under 1024 bits."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as error:
        raise KeyProblem(f"cannot read {path}: {error.strerror}") from None
    if mode & stat.S_IROTH:
        raise KeyProblem(f"{path} can be read by every user of this machine: chmod 600 {path} "
                         "(or 640 with the service's group)")
    bits = key_bits(data, path)
    if bits < MIN_KEY_BITS:
        raise KeyProblem(f"{path} is a {bits}-bit key; DKIM needs at least {MIN_KEY_BITS} bits "
                         f"(make a new one with `dispute-gateway dkim keygen`)")
    return SigningKey(selector="", private_pem=data, bits=bits)


def key_bits(private_pem: bytes, path: Path | str = "key") -> int:
    try:
        key = parse_pem_private_key(private_pem)
    except (UnparsableKeyError, ValueError, IndexError, TypeError):
        raise KeyProblem(f"{path} is not a PEM RSA private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)") from None
    return key["modulus"].bit_length()


class DkimSigner:
    """Adds one DKIM-Signature per key to a raw message; a message it cannot sign is sent
    unsigned and said so in the log (refusing it would lose the mail)."""

    def __init__(self, domain: str, keys: tuple[SigningKey, ...]) -> None:
        if not keys:
            raise ValueError("DkimSigner needs at least one key")
        self.domain = domain
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: DkimSettings) -> "DkimSigner | None":
        """The signer for [outbound.dkim], or None when the gateway does not sign."""
        if not settings.signing:
            return None
        keys = []
        for key in settings.keys:
            loaded = read_private_key(key.key_file)
            keys.append(SigningKey(key.selector, loaded.private_pem, loaded.bits))
        return cls(settings.domain, tuple(keys))

    def sign(self, raw: bytes) -> bytes:
        """`raw` with the signatures in front (header lines end like the message's own)."""
        newline = b"\r\n" if b"\r\n" in raw[: raw.find(b"\n") + 1 or len(raw)] else b"\n"
        signatures = []
        try:
            for key in self.keys:
                signatures.append(self._signature(raw, key))
        except (dkim.DKIMException, ValueError, IndexError) as error:
            log.error("outgoing message not DKIM-signed (%s): %s", _message_id(raw), error)
            return raw
        return b"".join(s.replace(b"\r\n", newline) for s in signatures) + raw

    def _signature(self, raw: bytes, key: SigningKey) -> bytes:
        signer = _OpenSslDkim(raw, key)
        present = [name.lower() for name, _ in signer.headers if name.lower() in SIGNED_HEADERS]
        if b"from" not in present:
            raise ValueError("the message has no From header")
        return signer.sign(key.selector.encode(), self.domain.encode(), key.private_pem,
                           canonicalize=(b"relaxed", b"simple"), include_headers=_signed_names(present))


def _signed_names(present: list[bytes]) -> list[bytes]:
    """The h= list: each header name as often as it occurs, and the oversigned ones once
    more, present or not (an instance listed beyond those present signs its absence)."""
    counts: dict[bytes, int] = {}
    for name in present:
        counts[name] = counts.get(name, 0) + 1
    for name in sorted(OVERSIGNED_HEADERS - set(counts)):
        counts[name] = 0
    return [name for name, count in counts.items()
            for _ in range(count + (name in OVERSIGNED_HEADERS))]


def _message_id(raw: bytes) -> str:
    for line in raw[:8192].splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
        if not line.strip():
            break
    return "no Message-ID"


# --- keys and DNS records ---------------------------------------------------------------------

def generate_private_key(bits: int = DEFAULT_KEY_BITS) -> bytes:
    """A new RSA private key, PEM (PKCS#8), for DKIM."""
    if bits < MIN_KEY_BITS:
        raise KeyProblem(f"DKIM needs at least {MIN_KEY_BITS} bits, not {bits}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_private_key(path: Path, private_pem: bytes) -> None:
    """Create `path` (mode 0600) with the key; never overwrites a file (a key in use would
    stop verifying everywhere its DNS record is published)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProblem(f"{path} exists already: choose another selector or file (a key in use "
                         "must stay until its DNS record is retired)") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)


def public_key_value(private_pem: bytes) -> str:
    """The DKIM key record's text for a private key: `v=DKIM1; k=rsa; p=<base64 DER>`."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def txt_strings(value: str) -> list[str]:
    """`value` cut into TXT <character-string>s of at most 255 characters (a 2048-bit key
    does not fit in one); resolvers join them back."""
    return [value[i:i + TXT_STRING_MAX] for i in range(0, len(value), TXT_STRING_MAX)] or [""]
