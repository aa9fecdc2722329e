"""A PNG reader for the screenshot tests: 8-bit RGB or RGBA, not interlaced (what Chromium
writes), decoded with zlib and the five scanline filters of the PNG specification."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _unfilter(kind: int, line: np.ndarray, previous: np.ndarray, channels: int) -> np.ndarray:
    """One scanline back from its filter (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    if kind == 0:
        return line
    if kind == 1:
        return np.cumsum(line.reshape(-1, channels), axis=0).reshape(-1) % 256
    if kind == 2:
        return (line + previous) % 256
    out, up = [int(v) for v in line], [int(v) for v in previous]
    for x in range(len(out)):
        a = out[x - channels] if x >= channels else 0
        b, c = up[x], up[x - channels] if x >= channels else 0
        if kind == 3:
            out[x] = (out[x] + (a + b) // 2) & 0xFF
            continue
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        out[x] = (out[x] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 0xFF
    return np.array(out, np.int64)


def read(path: str | Path) -> np.ndarray:
    """The pixels, an array (height, width, 3) of uint8 RGB."""
    data = Path(path).read_bytes()
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{path}: expected a PNG file")
    pos, idat, header = len(SIGNATURE), b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{path}: expected 8-bit RGB or RGBA, not interlaced")
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width * channels + 1)
    pixels = np.zeros((height, width * channels), np.int64)
    previous = pixels[0]
    for y in range(height):
        previous = pixels[y] = _unfilter(int(raw[y, 0]), raw[y, 1:].astype(np.int64), previous, channels)
    return pixels.reshape(height, width, channels)[:, :, :3].astype(np.uint8)


def colours(path: str | Path) -> Counter[str]:
    """How many pixels of each colour, as '#rrggbb'."""
    pixels = read(path).reshape(-1, 3).astype(np.int64)
    codes, counts = np.unique((pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2], return_counts=True)
    return Counter({f"#{int(c):06x}": int(n) for c, n in zip(codes, counts, strict=True)})


def write(path: str | Path, pixels: np.ndarray) -> None:
    """An RGB PNG of `pixels` (height, width, 3) (to look at a crop of a screenshot)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    height, width, _ = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"".join(b"\0" + row.tobytes() for row in pixels.astype(np.uint8)))
    Path(path).write_bytes(SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
