"""The rules an image must meet, checked first on what Discord says about an attachment (type, size,
dimensions) so a bad one is refused before any byte is fetched."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ImageRejected, limit_mb

ALLOWED_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # an image must be *under* this
MIN_SHORT_SIDE = 300  # the short side must be *over* this
MAX_IMAGE_PIXELS = 50_000_000  # the largest image accepted at all (7000 × 7000 passes)
# The most memory one image may take while it is decoded and resized. JPEGs are decoded at a reduced scale
# and large PNGs band by band, so they always fit; a WebP (or an unusual PNG) too large for it is refused.
DECODE_BUDGET_BYTES = 64 * 1024 * 1024
MAX_ASPECT = (5, 2)  # long side to short side at most 5:2, in either orientation (2:5 .. 5:2)

USE_INSTEAD = "use a JPG, PNG or WebP image"


# Image metadata (what Discord says about an attachment) --------------------------------------------
@dataclass(frozen=True)
class ImageMeta:
    filename: str
    content_type: str | None
    size: int
    width: int | None
    height: int | None


_TYPE_NAMES = {
    "image/jpeg": "JPG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/x-bmp": "BMP",
    "image/x-ms-bmp": "BMP",
    "image/tiff": "TIFF",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
    "image/svg+xml": "SVG",
    "image/x-icon": "ICO",
    "image/vnd.microsoft.icon": "ICO",
    "application/pdf": "PDF",
}
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
_EXTENSION_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
    "svg": "image/svg+xml",
    "ico": "image/x-icon",
    "pdf": "application/pdf",
}


def megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _effective_type(meta: ImageMeta) -> str | None:
    """The MIME type from `content_type`, or from the extension when the content type says nothing useful."""
    ctype = (meta.content_type or "").split(";", 1)[0].strip().lower()
    ctype = _TYPE_ALIASES.get(ctype, ctype)
    if ctype.startswith("image/") or ctype in _TYPE_NAMES:
        return ctype
    ext = meta.filename.rsplit(".", 1)[-1].lower() if "." in meta.filename else ""
    return _EXTENSION_TYPES.get(ext)


def _type_refusal(ctype: str | None) -> str:
    if ctype is None:
        return f"That file isn't a JPG, PNG or WebP image; {USE_INSTEAD}."
    name = _TYPE_NAMES.get(ctype)
    if name is None:
        sub = ctype.split("/", 1)[-1].removeprefix("x-").split("+", 1)[0]
        name = sub.upper() if ctype.startswith("image/") and sub else None
    if name is None:
        return f"That file isn't a JPG, PNG or WebP image; {USE_INSTEAD}."
    return f"That file is a {name}; {USE_INSTEAD}."


def check_dimensions(width: int, height: int) -> None:
    """Short side over 300 px and aspect ratio within 2:5..5:2 (MAX_ASPECT; exact integer arithmetic)."""
    if width <= 0 or height <= 0:
        raise ImageRejected(f"That image has no usable size; {USE_INSTEAD}.", f"size {width}x{height}")
    short = min(width, height)
    if short <= MIN_SHORT_SIDE:
        raise ImageRejected(
            f"That image is {width}×{height} px; its short side must be over {MIN_SHORT_SIDE} px. "
            "Try a larger image.",
            f"short side {short} <= {MIN_SHORT_SIDE}",
        )
    long, most = max(width, height), MAX_ASPECT  # long/short > 5/2  <=>  2*long > 5*short (exact)
    if most[1] * long > most[0] * short:
        ratios = f"{most[1]}:{most[0]} and {most[0]}:{most[1]}"
        raise ImageRejected(
            f"That image is {width}×{height} px; its aspect ratio must be between {ratios}. "
            "Crop it closer to square and try again.",
            f"aspect {width}/{height} outside {ratios}",
        )


def check_image_metadata(meta: ImageMeta) -> None:
    """Refuse an attachment from its metadata alone (instant; the real bytes are checked later)."""
    ctype = _effective_type(meta)
    if ctype not in ALLOWED_IMAGE_TYPES:
        raise ImageRejected(_type_refusal(ctype), f"type {meta.content_type!r} / {meta.filename!r}")
    if meta.size >= MAX_IMAGE_BYTES:
        raise ImageRejected(
            f"That image is {megabytes(meta.size)}; it must be under {limit_mb(MAX_IMAGE_BYTES)}. "
            "Try a smaller or more compressed image.",
            f"size {meta.size}",
        )
    if meta.width is not None and meta.height is not None:
        check_dimensions(meta.width, meta.height)
