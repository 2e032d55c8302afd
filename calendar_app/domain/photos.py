"""A picture made safe to serve: decoded, checked and re-encoded by us.

A provider's image bytes are never passed on. Pillow decodes them (only common photo
formats), the size is checked before anything is decoded, the picture is turned upright
by its EXIF orientation, flattened onto white, scaled down and written as a fresh JPEG
without any metadata (no EXIF, no location, no comments).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_INPUT_BYTES = 5 * 1024 * 1024
MAX_INPUT_PIXELS = 40_000_000  # far above any portrait, far below a decompression bomb
MIN_SIDE = 16  # smaller is a tracking pixel or an icon, not a photo of a person
MAX_SIDE = 512  # what a page shows at most, at twice its size for sharp screens
FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
CONTENT_TYPE = "image/jpeg"


class PhotoError(Exception):
    """The bytes are no usable picture."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PhotoData:
    """A re-encoded picture, named by the SHA-256 of its bytes."""

    digest: str
    data: bytes
    width: int
    height: int
    content_type: str = CONTENT_TYPE


def reencode(data: bytes) -> PhotoData:
    """The picture in ``data`` as our own JPEG of at most MAX_SIDE pixels a side."""
    if not data:
        raise PhotoError("photo.empty", "the picture is empty")
    if len(data) > MAX_INPUT_BYTES:
        raise PhotoError("photo.too_large", "the picture is larger than 5 MB")
    try:
        with warnings.catch_warnings():
            # Pillow warns of (or refuses) a picture claiming very many pixels: refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            flat = _upright_on_white(data)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise PhotoError("photo.too_large", "the picture has too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports damaged or unknown data with these; what it said is not passed on.
        raise PhotoError(
            "photo.not_image", f"not a readable picture ({type(exc).__name__})"
        ) from None
    flat.thumbnail((MAX_SIDE, MAX_SIDE))
    out = BytesIO()
    flat.save(out, "JPEG", quality=85, optimize=True)
    encoded = out.getvalue()
    return PhotoData(
        digest=hashlib.sha256(encoded).hexdigest(),
        data=encoded,
        width=flat.width,
        height=flat.height,
    )


def _upright_on_white(data: bytes) -> Image.Image:
    """The first frame, its size checked before decoding, upright and without alpha."""
    with Image.open(BytesIO(data), formats=FORMATS) as image:
        width, height = image.size
        if width * height > MAX_INPUT_PIXELS:
            raise PhotoError("photo.too_large", "the picture has too many pixels")
        if min(width, height) < MIN_SIDE:
            raise PhotoError("photo.too_small", "the picture is too small to show a person")
        image.seek(0)  # the first frame of an animation
        image.load()
        return _on_white(ImageOps.exif_transpose(image))


def _on_white(image: Image.Image) -> Image.Image:
    """RGB with any transparency laid on white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
