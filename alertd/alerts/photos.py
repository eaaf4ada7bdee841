"""The child's photo: JPEG or PNG only, size-limited, decoded once to prove it is an image,
and stored with the SHA-1 that CAP's <resource><digest> wants and a SHA-256 that names it."""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.alerts.models import Photo, Version
from alertd.errors import Invalid

ALLOWED = {"JPEG": "image/jpeg", "PNG": "image/png"}
# Decompression bombs: a small file that decodes to an enormous bitmap.
MAX_PIXELS = 40_000_000


def store_photo(session: Session, data: bytes, *, max_bytes: int) -> Photo:
    """Check and store a photo; the same bytes uploaded twice give the same row."""
    if not data:
        raise Invalid("The photo is empty.", fields={"photo": "empty file"})
    if len(data) > max_bytes:
        raise Invalid(
            f"The photo is {len(data):,} bytes; the limit is {max_bytes:,}.",
            fields={"photo": "too large"},
        )
    try:
        # Pillow warns (or raises, past twice its limit) on decompression bombs; both are a
        # refusal here, whatever the warning filters are.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            kind = image.format
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise Invalid(
                    "The photo's dimensions are too large.", fields={"photo": "too many pixels"}
                )
            image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Invalid(
            "The photo's dimensions are too large.", fields={"photo": "too many pixels"}
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise Invalid(
            "The photo is not a readable JPEG or PNG image.", fields={"photo": "not an image"}
        ) from exc
    if kind not in ALLOWED:
        raise Invalid(
            f"The photo is {kind}; only JPEG and PNG are accepted.",
            fields={"photo": "must be JPEG or PNG"},
        )
    sha256 = hashlib.sha256(data).hexdigest()
    existing = session.execute(select(Photo).where(Photo.sha256 == sha256)).scalar_one_or_none()
    if existing is not None:
        return existing
    photo = Photo(
        sha256=sha256,
        sha1=hashlib.sha1(data).hexdigest(),  # noqa: S324 - CAP digest
        mime_type=ALLOWED[kind],
        size=len(data),
        width=width,
        height=height,
        data=data,
    )
    session.add(photo)
    session.flush()
    return photo


def photo_by_name(session: Session, name: str) -> Photo | None:
    """Find a photo by its public file name, ``<sha256>.<ext>``."""
    sha256, _, ext = name.partition(".")
    photo = session.execute(select(Photo).where(Photo.sha256 == sha256)).scalar_one_or_none()
    return photo if photo is not None and photo.extension == ext else None


def is_published(session: Session, photo: Photo) -> bool:
    """Whether a published version carries the photo. A draft's, a submitted alert's or a
    pending update's photo is not public until it goes out."""
    found = session.execute(select(Version.id).where(Version.photo_id == photo.id).limit(1))
    return found.first() is not None
