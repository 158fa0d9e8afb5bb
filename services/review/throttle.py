"""Web login throttling: failed logins counted per account and per client address.

Past ``max_per_account`` failures of one account within ``window``, that account's
logins are refused (even with the right password) until the oldest failure leaves the
window, which stops guessing one reviewer's password; past ``max_per_address`` failures
from one address (any accounts), that address is refused, which stops spraying many
accounts. A successful login clears its account's failures, not its address's.

The counts live in the process (one replica's view): enough against guessing through one
replica; behind several, each replica allows its own share.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

#: the most accounts and addresses remembered; the least recently failed are forgotten
MAX_TRACKED = 10_000


class _Failures:
    """Failure times per key within the window, bounded in keys."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit, self.window = limit, window
        self._times: OrderedDict[str, deque[datetime]] = OrderedDict()

    def retry_after(self, key: str, now: datetime) -> float | None:
        times = self._times.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._times[key]
            return None
        if len(times) < self.limit:
            return None
        return (times[0] + self.window - now).total_seconds()

    def add(self, key: str, now: datetime) -> None:
        times = self._times.setdefault(key, deque(maxlen=self.limit))
        times.append(now)
        self._times.move_to_end(key)
        while len(self._times) > MAX_TRACKED:
            self._times.popitem(last=False)

    def clear(self, key: str) -> None:
        self._times.pop(key, None)


class LoginThrottle:
    """Decides whether a login attempt may be checked at all, and records its outcome."""

    def __init__(self, *, max_per_account: int, max_per_address: int, window: timedelta) -> None:
        self._accounts = _Failures(max_per_account, window)
        self._addresses = _Failures(max_per_address, window)
        self._lock = threading.Lock()

    def retry_after(self, account: str, address: str, now: datetime) -> int | None:
        """Whole seconds to wait before this account or address may try again, or None."""
        with self._lock:
            waits = [
                wait
                for wait in (
                    self._accounts.retry_after(account, now),
                    self._addresses.retry_after(address, now),
                )
                if wait is not None
            ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, account: str, address: str, now: datetime) -> None:
        with self._lock:
            self._accounts.add(account, now)
            self._addresses.add(address, now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._accounts.clear(account)
