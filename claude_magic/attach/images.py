"""Images for Claude's vision: from whatever the user has to an API image block within limits.

Sources: PNG/JPEG/GIF/WebP bytes and files, Pillow images, numpy ``uint8`` arrays, matplotlib
figures and axes, ``IPython.display.Image``. An image already within the limits is sent as
its original bytes; otherwise it is converted (modes the API can't take), scaled so its long
edge is at most 1568 px, and encoded as PNG, or as JPEG where that is smaller (photographs).
Pillow is imported only here, and only when an image is attached.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.errors import ClaudeError
from ..api.media import MAX_ENCODED_BYTES, sniff_media_type

MAX_LONG_EDGE = 1568
"""Longer edges are scaled down by the API anyway; sending them only costs time."""
JPEG_QUALITY = 85
JPEG_WORTH_TRYING = 256 * 1024
"""Below this PNG size an image stays lossless; above it, JPEG is used if it is smaller."""

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})


class ImageError(ClaudeError):
    """An image that can't be read or brought within the API's limits."""


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send: its encoded bytes, media type and size in pixels."""

    data: bytes
    media_type: str
    width: int
    height: int
    source_size: tuple[int, int]
    """Width and height before any scaling."""

    @property
    def digest(self) -> str:
        """The SHA-256 of the image's base64 text, as it stands in a request."""
        return hashlib.sha256(base64.b64encode(self.data)).hexdigest()

    def block(self) -> dict[str, Any]:
        encoded = base64.b64encode(self.data).decode("ascii")
        return {"type": "image", "source": {"type": "base64", "media_type": self.media_type, "data": encoded}}

    def describe(self) -> str:
        scaled = "" if self.source_size == (self.width, self.height) else f", scaled from {self.source_size[0]}×{self.source_size[1]}"
        return f"{self.width}×{self.height} px {_FORMATS[self.media_type]}, {len(self.data):,} bytes{scaled}"

    def thumbnail_png(self, edge: int = 160) -> bytes:
        image = _pil().Image.open(io.BytesIO(self.data))
        image.thumbnail((edge, edge))
        return _encode(_convert_for(image, "PNG"), "PNG")


def _pil() -> Any:
    try:
        import PIL.Image
    except ImportError:
        raise ImageError("attaching images needs Pillow: pip install Pillow") from None
    return PIL


def from_bytes(data: bytes) -> PreparedImage:
    """Encoded image bytes, sent unchanged when already within the limits."""
    media_type = sniff_media_type(data)
    if media_type is None:
        raise ImageError("these bytes are not a PNG, JPEG, GIF or WebP image")
    PIL = _pil()
    try:
        image = PIL.Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged data
        raise ImageError(f"can't read the image: {exc}") from None
    if max(image.size) <= MAX_LONG_EDGE and len(base64.b64encode(data)) <= MAX_ENCODED_BYTES and _api_can_take(image):
        return PreparedImage(data, media_type, image.width, image.height, image.size)
    return from_pil(image)


def from_file(path: str | Path) -> PreparedImage:
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ImageError(f"can't read the image file {str(path)!r}: {exc.strerror or exc}") from None
    return from_bytes(data)


def from_pil(image: Any) -> PreparedImage:
    """A Pillow image: converted, scaled and encoded within the limits."""
    source_size = image.size
    image = _scale_down(_normalise_mode(image))
    data, media_type = _smallest_encoding(image)
    while len(base64.b64encode(data)) > MAX_ENCODED_BYTES:  # only for extreme noise: shrink until it fits
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))
        data, media_type = _smallest_encoding(image)
    return PreparedImage(data, media_type, image.width, image.height, source_size)


def from_array(array: Any) -> PreparedImage:
    """A numpy ``uint8`` array, H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA)."""
    PIL = _pil()
    mode = {2: "L"}.get(array.ndim) or {3: "RGB", 4: "RGBA"}.get(array.shape[-1])
    if mode is None:
        raise ImageError(f"a {array.shape} array is not an image (H×W, H×W×3 or H×W×4)")
    import numpy as np

    return from_pil(PIL.Image.fromarray(np.ascontiguousarray(array), mode=mode))


def from_figure(figure: Any) -> PreparedImage:
    """A matplotlib figure, rendered as the inline backend shows it, at a resolution no
    higher than the API keeps (rendering pixels only to scale them away is slow)."""
    dpi = min(float(figure.dpi), MAX_LONG_EDGE / max(figure.get_size_inches()))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", dpi=dpi)
    return from_bytes(buffer.getvalue())


def is_image_array(array: Any) -> bool:
    """numpy arrays that are images: ``uint8``, H×W or H×W×{3,4}, at least 8 px a side."""
    shape: tuple[int, ...] = tuple(getattr(array, "shape", ()))
    if str(getattr(array, "dtype", "")) != "uint8" or len(shape) not in (2, 3):
        return False
    return min(shape[:2]) >= 8 and (len(shape) == 2 or shape[2] in (3, 4))


def _api_can_take(image: Any) -> bool:
    return image.mode in ("RGB", "RGBA", "L", "LA") or (image.format == "GIF" and image.mode == "P")


def _normalise_mode(image: Any) -> Any:
    """Modes the API can't take (CMYK, 16-bit, float, palette, 1-bit) become RGB(A) or L."""
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        return _pil().Image.fromarray(scaled.astype(np.uint8), mode="L")
    has_alpha = image.mode in ("LA", "PA", "RGBa") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _scale_down(image: Any) -> Any:
    if max(image.size) <= MAX_LONG_EDGE:
        return image
    factor = MAX_LONG_EDGE / max(image.size)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, _pil().Image.Resampling.LANCZOS, reducing_gap=3.0)


def _smallest_encoding(image: Any) -> tuple[bytes, str]:
    """PNG; or JPEG for a large opaque image where it is smaller (photographs, not plots)."""
    if image.mode != "RGBA" and image.width * image.height > 1_000_000 and _looks_photographic(image):
        return _encode(image, "JPEG"), "image/jpeg"  # its PNG would be several times larger, and slow to make
    png = _encode(image, "PNG")
    if image.mode == "RGBA" or len(png) <= JPEG_WORTH_TRYING:
        return png, "image/png"
    jpeg = _encode(image, "JPEG")
    return (jpeg, "image/jpeg") if len(jpeg) < len(png) else (png, "image/png")


def _looks_photographic(image: Any) -> bool:
    """Many distinct colours even at thumbnail size: a photograph, not a plot or diagram."""
    thumbnail = image.convert("RGB").resize((128, 128))
    return thumbnail.getcolors(maxcolors=4096) is None


def _convert_for(image: Any, image_format: str) -> Any:
    return image if image_format == "PNG" or image.mode in ("RGB", "L") else image.convert("RGB")


def _encode(image: Any, image_format: str) -> bytes:
    buffer = io.BytesIO()
    options = {"optimize": True} if image_format == "PNG" else {"quality": JPEG_QUALITY, "optimize": True}
    _convert_for(image, image_format).save(buffer, format=image_format, **options)
    return buffer.getvalue()
