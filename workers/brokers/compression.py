"""Compressed message bodies, read with a bound on what they expand to.

kombu decompresses a body whole: 264 bytes of bzip2 expanded to 300 MB in the worker's main
process and again in the pool, and held its event loop for seconds. Here a body may expand
to at most MAX_EXPANDED_BYTES (far above the largest job a producer may send, 100,000
activity rows); past that, or in a format no worker reads, the message is refused."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable

MAX_EXPANDED_BYTES = 128 * 1024 * 1024


class BodyRefused(ValueError):
    """Why a compressed body cannot be read, as the dead letter and the producer see it."""


def _zlib(body: bytes, most: int) -> bytes:
    reader = zlib.decompressobj()
    return reader.decompress(body, most)


def _bz2(body: bytes, most: int) -> bytes:
    return bz2.BZ2Decompressor().decompress(body, max_length=most)


def _lzma(body: bytes, most: int) -> bytes:
    return lzma.LZMADecompressor().decompress(body, max_length=most)


# kombu's names for each format (kombu/compression.py registers these)
READERS: dict[str, Callable[[bytes, int], bytes]] = {
    **dict.fromkeys(("application/x-gzip", "gzip", "zlib"), _zlib),
    **dict.fromkeys(("application/x-bz2", "bzip2", "bzip"), _bz2),
    **dict.fromkeys(("application/x-lzma", "lzma", "xz"), _lzma),
}


def expand(body: bytes | str, compression: object, *, most: int = MAX_EXPANDED_BYTES) -> bytes:
    """The body decompressed, or BodyRefused naming the format or the bound."""
    reader = READERS.get(compression) if isinstance(compression, str) else None
    if reader is None:
        known = "gzip, bzip2, lzma"
        raise BodyRefused(f"its compression {str(compression)[:60]!r} is not one of {known}")
    data = body.encode("latin-1") if isinstance(body, str) else body
    try:
        expanded = reader(data, most + 1)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as error:
        raise BodyRefused(
            f"its body is not valid {compression} data ({str(error)[:120]})"
        ) from None
    if len(expanded) > most:
        raise BodyRefused(
            f"its {compression} body expands past {most // (1024 * 1024)} MiB, more than any "
            "job takes"
        )
    return expanded
