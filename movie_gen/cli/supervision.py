"""How often `movie-gen up` starts a worker again that exited on its own."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WORKER_RESTARTS, RESTART_WINDOW_S = 5, 60.0


@dataclass
class RestartBudget:
    """At most `limit` restarts in any `window_s` seconds: a worker that dies as soon as it starts
    (a bad setting, a broker that refuses it) is not started again for ever."""

    limit: int = WORKER_RESTARTS
    window_s: float = RESTART_WINDOW_S
    times: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        """Whether a restart at `now` (monotonic seconds) is allowed; it counts if it is."""
        while self.times and now - self.times[0] >= self.window_s:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True

    @property
    def recent(self) -> int:
        """The restarts counted in the current window."""
        return len(self.times)
