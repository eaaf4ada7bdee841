"""The audit signing key and the signed notes it makes.

One Ed25519 key, kept in a file outside the database, does two things:

- it signs checkpoints (the chain's length and head hash) in the C2SP signed-note format
  (https://c2sp.org/signed-note), as transparency logs do, so a copy kept outside the database
  proves what the trail held at that moment;
- a MAC key derived from it authenticates the head row, so entries appended by someone who can
  write to the database but cannot read the key file do not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from alertd.settings import Settings

# signed-note's signature type byte for Ed25519.
_ED25519 = b"\x01"
_EM_DASH = "\u2014"
_RAW = serialization.Encoding.Raw
_RAW_PUBLIC = serialization.PublicFormat.Raw


class SignatureError(ValueError):
    """A note that is malformed, or not signed by the expected key."""


def key_path(settings: Settings) -> Path:
    if settings.AUDIT_SIGNING_KEY:
        return Path(settings.AUDIT_SIGNING_KEY)
    return settings.instance_path / "audit_signing_key.pem"


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured key; on the embedded default (no path set) one generated once into the
    instance folder, readable by its owner only, as the secret key is. A configured path that
    does not exist is an error rather than a fresh key: a new key would orphan every checkpoint."""
    path = key_path(settings)
    if not path.exists() and not settings.AUDIT_SIGNING_KEY:
        _generate(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        # Exclusive create: two processes starting together keep one key, created 0600.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def head_mac_key(key: Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return hashlib.sha256(b"alertd audit head MAC\n" + raw).digest()


def head_mac(mac_key: bytes, seq: int, head_hash: str) -> str:
    return hmac.new(mac_key, f"{seq}:{head_hash}".encode(), hashlib.sha256).hexdigest()


def macs_equal(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a, b)


@dataclass(frozen=True)
class Verifier:
    """A signed-note verifier key: a name and an Ed25519 public key."""

    name: str
    public: Ed25519PublicKey

    @property
    def public_bytes(self) -> bytes:
        return self.public.public_bytes(_RAW, _RAW_PUBLIC)

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n" + _ED25519 + self.public_bytes).digest()[
            :4
        ]

    def vkey(self) -> str:
        """The verifier key in signed-note's text form, to publish or hand to auditors."""
        encoded = base64.b64encode(_ED25519 + self.public_bytes).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        try:
            name, key_id, encoded = text.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise SignatureError("not a signed-note verifier key (name+hash+key)") from None
        if raw[:1] != _ED25519 or len(raw) != 33:
            raise SignatureError("the verifier key is not an Ed25519 key")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if verifier.key_id.hex() != key_id:
            raise SignatureError("the verifier key's hash does not match its name and key")
        return verifier


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise ValueError(f"a signed-note key name has no spaces or '+': {name!r}")


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """``text`` (ending in a newline) followed by a blank line and one signature line."""
    _check_name(name)
    if not text.endswith("\n") or "\n\n" in text:
        raise ValueError("a note's text ends with one newline and has no blank line")
    verifier = Verifier(name, key.public_key())
    signature = base64.b64encode(verifier.key_id + key.sign(text.encode())).decode()
    return f"{text}\n{_EM_DASH} {name} {signature}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` if ``verifier`` signed it; otherwise :class:`SignatureError`."""
    text, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise SignatureError("not a signed note (no blank line before the signatures)")
    text += "\n"
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _EM_DASH:
            raise SignatureError(f"malformed signature line {line!r}")
        if parts[1] != verifier.name:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError:
            raise SignatureError("a signature is not base64") from None
        if raw[:4] != verifier.key_id:
            continue
        try:
            verifier.public.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise SignatureError(f"the signature by {verifier.name} does not verify") from None
        return text
    raise SignatureError(f"the note carries no signature by {verifier.name}")
