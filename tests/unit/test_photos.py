"""Pictures made safe to serve: decoded only from common photo formats, checked for size
before decoding, turned upright, flattened, scaled down and written as our own JPEG."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

import pytest
from PIL import Image

from calendar_app.domain.photos import MAX_SIDE, PhotoError, reencode


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    out = BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def test_a_photo_becomes_our_own_jpeg_without_its_metadata():
    exif = Image.Exif()
    exif[0x010F] = "Kamera AB"  # Make
    exif[0x8825] = {1: "N", 2: (56.0, 52.0, 0.0)}  # GPS: where the picture was taken
    original = encoded(Image.new("RGB", (400, 300), "teal"), "JPEG", exif=exif)
    photo = reencode(original)
    assert photo.data != original and photo.content_type == "image/jpeg"
    result = decoded(photo.data)
    assert result.format == "JPEG" and (result.width, result.height) == (400, 300)
    assert dict(result.getexif()) == {}


def test_it_is_turned_upright_by_its_orientation_and_scaled_down():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: to be turned 90 degrees clockwise
    sideways = encoded(Image.new("RGB", (2000, 1000), "teal"), "JPEG", exif=exif)
    photo = reencode(sideways)
    assert (photo.width, photo.height) == (MAX_SIDE // 2, MAX_SIDE)


def test_transparency_is_laid_on_white():
    clear = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    result = decoded(reencode(encoded(clear, "PNG")).data).convert("RGB")
    assert min(result.getpixel((20, 20))) > 245  # white, not black


def test_an_animation_gives_its_first_frame():
    frames = [Image.new("RGB", (40, 40), c) for c in ("blue", "red")]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    red, green, blue = decoded(reencode(gif).data).convert("RGB").getpixel((20, 20))
    assert blue > 200 and red < 60


def test_the_same_picture_has_the_same_digest():
    data = encoded(Image.new("RGB", (50, 50), "teal"), "PNG")
    assert reencode(data).digest == reencode(data).digest


def huge_png(width: int, height: int) -> bytes:
    """A tiny file whose header claims a huge picture (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\0" * 64)
    idat = (
        struct.pack(">I", len(data))
        + b"IDAT"
        + data
        + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    )
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + iend


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "photo.empty"),
        (b"x" * (5 * 1024 * 1024 + 1), "photo.too_large"),
        (huge_png(20000, 20000), "photo.too_large"),
        (encoded(Image.new("RGB", (8, 300)), "PNG"), "photo.too_small"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "photo.not_image"),
        (b"%PDF-1.7 not a picture", "photo.not_image"),
        (encoded(Image.new("RGB", (300, 300), "teal"), "JPEG")[:400], "photo.not_image"),
        (encoded(Image.new("RGB", (300, 300), "teal"), "BMP"), "photo.not_image"),
    ],
    ids=["empty", "over-5MB", "bomb", "tiny", "svg", "pdf", "truncated-jpeg", "bmp"],
)
def test_what_is_no_usable_picture_is_refused_with_a_code(data, code):
    with pytest.raises(PhotoError) as caught:
        reencode(data)
    assert caught.value.code == code
