"""The arrival scheduler: an open model that holds the profile's request rate.

Locust's own knob is a number of users, which gives a closed model: when responses slow down,
fewer requests start. The article's artillery run is open (arrivalRate), and the failure it shows
only appears if the load keeps coming while the system slows. So one greenlet issues tickets at
the instants the profile's rate integral says, and a pool of users (sized by the shape, always
larger than the requests in flight) takes the tickets and sends them. The number of users only
needs to be big enough; it does not set the rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gevent
from gevent.queue import Queue

from load.profiles import Profile


@dataclass(frozen=True)
class Ticket:
    topology: str
    number: int  # 1-based arrival number, the same for every topology of one instant
    due: float  # run time the request should start


class ArrivalScheduler:
    def __init__(self, profile: Profile, topologies: Sequence[str], clock: Callable[[], float]):
        self.profile = profile
        self.topologies = tuple(topologies)
        self.clock = clock
        self.tickets: Queue = Queue()
        self.issued = 0  # arrival instants issued (each gives one ticket per topology)
        self.finished = False
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.finished = True

    @property
    def backlog(self) -> int:
        """Tickets due but not yet taken: more than a handful means the pool is too small."""
        return self.tickets.qsize()

    def _run(self) -> None:
        number = 1
        while (due := self.profile.time_of_arrival(number)) is not None:
            delay = due - self.clock()
            if delay > 0:
                gevent.sleep(delay)
            for topology in self.topologies:
                self.tickets.put(Ticket(topology, number, due))
            self.issued = number
            number += 1
        self.finished = True
