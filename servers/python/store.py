"""The Python peers' store: a dict of bytes to bytes, bounded by --store-bytes.

Each peer keeps its own store (docs/peers.md): the figures of a peer include its language's own
speed. The memory bound is accounted, not measured: a key costs its key and value bytes plus a
fixed share for what CPython holds around them (two bytes objects and a dict slot), so that
--store-bytes means about what it means for the C++ models and a full store answers -OOM before
the process grows without bound.

In asyncio and gevent one thread runs every command and no command yields, so a command is atomic
without a lock; pythreads passes a real lock, since a thread may be switched out between the
read and the write of an INCR.
"""
import contextlib

# What CPython holds for one key beyond its bytes: two bytes objects' headers (33 bytes each)
# and about a dict entry's share of the table.
ENTRY_OVERHEAD = 2 * 33 + 24


class OutOfMemory(Exception):
    """A write that does not fit in --store-bytes; nothing was changed."""


def _cost(key, value):
    return len(key) + len(value) + ENTRY_OVERHEAD


class Store:
    def __init__(self, limit_bytes, lock=None):
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self._data = {}
        # Held around every operation; a no-op for the single-threaded models.
        self.lock = lock if lock is not None else contextlib.nullcontext()

    def __len__(self):
        return len(self._data)

    def _charge(self, delta):
        """Accounts `delta` bytes more, or raises OutOfMemory having accounted nothing. A write
        that frees memory is always allowed, as Redis allows deletes on a full server."""
        if delta > 0 and self.used_bytes + delta > self.limit_bytes:
            raise OutOfMemory()
        self.used_bytes += delta

    def _put(self, key, value):
        old = self._data.get(key)
        self._charge(_cost(key, value) - (_cost(key, old) if old is not None else 0))
        self._data[key] = value

    def _drop(self, key):
        old = self._data.pop(key, None)
        if old is not None:
            self.used_bytes -= _cost(key, old)
        return old

    def get(self, key):
        return self._data.get(key)

    def set(self, key, value, condition=None):
        """SET with NX ("nx": only if absent) or XX ("xx": only if present). Returns
        (written, old value or None)."""
        with self.lock:
            old = self._data.get(key)
            if (condition == "nx" and old is not None) or (condition == "xx" and old is None):
                return False, old
            self._put(key, value)
            return True, old

    def update(self, key, edit):
        """Runs edit(current value or None) under the lock: it returns the new value, or None to
        leave the key as it is. Returns what edit returned. For the commands whose new value is
        computed from the old one (INCR, INCRBYFLOAT, APPEND, STRLEN)."""
        with self.lock:
            replacement = edit(self._data.get(key))
            if replacement is not None:
                self._put(key, replacement)
            return replacement

    def getdel(self, key):
        with self.lock:
            return self._drop(key)

    def delete(self, keys):
        """How many of `keys` existed (DEL, UNLINK)."""
        with self.lock:
            return sum(self._drop(key) is not None for key in keys)

    def count_existing(self, keys):
        """How many of `keys` exist, a key counted as often as given (EXISTS)."""
        data = self._data
        return sum(key in data for key in keys)

    def mget(self, keys):
        with self.lock:
            return [self._data.get(key) for key in keys]

    def mset(self, pairs, only_if_all_absent=False):
        """Writes every (key, value) pair or none; a key given twice takes its last value. False
        when `only_if_all_absent` and a key exists (MSETNX). Raises OutOfMemory, having written
        nothing, when they do not all fit."""
        with self.lock:
            data = self._data
            if only_if_all_absent and any(key in data for key, _ in pairs):
                return False
            final = dict(pairs)
            delta = 0
            for key, value in final.items():
                old = data.get(key)
                delta += _cost(key, value) - (_cost(key, old) if old is not None else 0)
            self._charge(delta)
            data.update(final)
            return True

    def clear(self):
        with self.lock:
            self._data.clear()
            self.used_bytes = 0
