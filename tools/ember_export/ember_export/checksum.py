"""The .ember checksum, from XXH3-64 (seed 0): the `xxhash` package when installed, else Debian's libxxhash."""
import ctypes
import struct
import ctypes.util


def _from_package():
    try:
        import xxhash  # type: ignore
    except ImportError:
        return None
    return xxhash.xxh3_64_intdigest


def _from_library():
    name = ctypes.util.find_library("xxhash") or "libxxhash.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    fn = lib.XXH3_64bits
    fn.restype = ctypes.c_uint64
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lambda data: fn(bytes(data), len(data))


_xxh3 = _from_package() or _from_library()


CHUNK = 1 << 20


def xxh3_64(data: bytes) -> int:
    if _xxh3 is None:
        raise RuntimeError("ember_export needs XXH3: pip install xxhash, or install Debian's libxxhash0")
    return _xxh3(data)


def content_checksum(data: bytes) -> int:
    """The .ember checksum: XXH3-64 of the little-endian u64 XXH3-64 digests of consecutive
    1 MiB chunks (a two-level tree, so readers can hash chunks in parallel)."""
    view = memoryview(data)
    digests = b"".join(struct.pack("<Q", xxh3_64(bytes(view[i:i + CHUNK]))) for i in range(0, len(data), CHUNK))
    return xxh3_64(digests)
