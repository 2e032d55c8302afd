"""Virtual users of the load test: phones, people, caregivers and a provider's system.

    LOADTEST_USERS=/path/to/users.json locust -f loadtest/locustfile.py --host http://...

(``python -m loadtest.run`` does this for every step.) The mix, by request type:

- *phones* poll their person's feed with the ETag of their last fetch (``If-None-Match``),
  so most answers are 304; a feed whose person's calendar changed answers 200 once;
- *people* sign in (the login form, then the password: argon2 in full), view their week,
  often the next one, sometimes one visit; a few are helpers viewing the person they help;
- *caregivers*, signed in for their shift, open a person of their unit, the booking form,
  check times as the form's script does (``X-Requested-With: fetch``, one check per pause
  in typing), and book about half of the times they check; now and then their start page
  (every person of the unit) and the unit's day list;
- *a provider's system* pushes bookings through ``/api/v1/push/bookings``: new ones,
  moved ones, the same again (unchanged) and cancellations.

Requests are named by type, so locust reports each type on its own line. Think times are
compressed (a real phone polls every 15-60 minutes): the load is set by the number of
users, and the capacity estimate in docs/benchmarks.md scales the per-type costs to a
real day. ``LOADTEST_PACE`` multiplies every think time (default 1).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import gevent
from locust import FastHttpUser, between, task

ZONE = ZoneInfo("Europe/Stockholm")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_VISIT_LINK = re.compile(r'href="(/people/\d+/bookings/\d+[^"]*)"')
PACE = float(os.environ.get("LOADTEST_PACE", "1"))
# The feeds' current ETags, shared by the phones of this process: one phone per feed.
ETAGS: dict[str, str] = {}


@cache
def users() -> dict[str, Any]:
    """The seeded accounts, feeds and tokens (written by loadtest/seed.py)."""
    data: dict[str, Any] = json.loads(Path(os.environ["LOADTEST_USERS"]).read_text("utf-8"))
    ETAGS.update(dict(data["feeds"]))
    return data


def think(low: float, high: float) -> None:
    """A pause between two pages of one visit (gevent: the other users go on)."""
    gevent.sleep(random.uniform(low, high) * PACE)


def paced(low: float, high: float) -> Any:
    """Locust's wait between tasks, scaled by ``LOADTEST_PACE``."""
    return between(low * PACE, high * PACE)


class Browser(FastHttpUser):
    """A signed-in person's browser: cookies kept, the CSRF token read from the forms."""

    abstract = True

    def csrf_from(self, html: str) -> str:
        match = _CSRF.search(html)
        if match is None:
            raise RuntimeError("no CSRF token in the page")
        return match.group(1)

    def log_in(self, username: str) -> bool:
        """The login form, then the password, as a browser sends them."""
        self.client.cookiejar.clear()
        with self.client.get("/login", name="login form", catch_response=True) as page:
            if page.status_code != 200 or not page.text:
                page.failure(f"login form answered {page.status_code}")
                return False
            token = self.csrf_from(page.text)
        with self.client.post(
            "/login",
            name="login (argon2)",
            data={"csrf_token": token, "username": username, "password": users()["password"]},
            allow_redirects=False,
            catch_response=True,
        ) as answer:
            if answer.status_code != 302:
                answer.failure(f"login answered {answer.status_code}")
                return False
        return True


class Phone(FastHttpUser):
    """Phones polling their feeds; each poll is a new connection, as minutes apart."""

    weight = 12
    wait_time = paced(0.5, 1.5)

    def on_start(self) -> None:
        self.feeds = list(users()["feeds"])

    @task
    def poll(self) -> None:
        path = random.choice(self.feeds)[0]
        headers = {"Accept-Encoding": "gzip", "Connection": "close"}
        known = ETAGS.get(path)
        if known:
            headers["If-None-Match"] = known
        with self.client.get(path, headers=headers, catch_response=True) as answer:
            if answer.status_code == 304:
                answer.request_meta["name"] = "feed poll → 304"
            elif answer.status_code == 200:
                answer.request_meta["name"] = "feed poll → 200 (changed)"
            else:
                answer.request_meta["name"] = "feed poll → other"
                answer.failure(f"feed answered {answer.status_code}")
                return
            etag = answer.headers.get("ETag")
            if etag:
                ETAGS[path] = etag


class PersonVisit(Browser):
    """A person (now and then a helper) signs in and looks at the coming weeks."""

    weight = 4
    wait_time = paced(1.0, 3.0)

    @task
    def visit(self) -> None:
        data = users()
        if data["helpers"] and random.random() < 0.1:
            username, person_id = random.choice(data["helpers"])
            name = "helper week"
        else:
            person_id, username = random.choice(data["people"])
            name = "person week"
        if not self.log_in(username):
            return
        week = self.client.get(f"/people/{person_id}/week", name=name)
        links = _VISIT_LINK.findall(week.text or "")
        think(0.5, 1.5)
        if random.random() < 0.5:
            later = datetime.now(ZONE).date() + timedelta(days=7)
            ahead = self.client.get(
                f"/people/{person_id}/week?start={later.isoformat()}", name=name
            )
            links += _VISIT_LINK.findall(ahead.text or "")
            think(0.5, 1.5)
        if links and random.random() < 0.6:
            self.client.get(random.choice(links).replace("&amp;", "&"), name="person booking")


class Caregiver(Browser):
    """A caregiver at one unit, signed in for the shift, checking times and booking."""

    weight = 4
    wait_time = paced(1.0, 3.0)
    _numbers = itertools.count()

    def on_start(self) -> None:
        units = [u for u in users()["units"] if u["people"]]
        self.unit = units[next(self._numbers) % len(units)]
        self.username = random.choice(self.unit["caregivers"])
        self.log_in(self.username)

    @task(1)
    def start_page(self) -> None:
        self.client.get("/", name="caregiver start (people of the unit)")

    @task(1)
    def unit_day(self) -> None:
        day = datetime.now(ZONE).date() + timedelta(days=random.randrange(0, 5))
        self.client.get(f"/unit/day?day={day.isoformat()}", name="unit day list")

    @task(6)
    def book(self) -> None:
        person_id = random.choice(self.unit["people"])
        self.client.get(f"/people/{person_id}/week", name="caregiver week")
        form = self.client.get(f"/people/{person_id}/book", name="booking form")
        if form.status_code != 200:
            return
        fields = {
            "csrf_token": self.csrf_from(form.text or ""),
            "minutes": random.choice(("30", "45", "60")),
            "title": "Samtal",
            "location": "Mottagningen",
            "mode": "in_person",
            "days": "14",
        }
        clash = True
        for _ in range(random.randint(1, 3)):
            think(0.3, 1.0)  # the pause in typing after which the script checks
            day = datetime.now(ZONE).date() + timedelta(days=random.randrange(1, 30))
            slot = random.randrange(8 * 4, 16 * 4)
            fields |= {"date": day.isoformat(), "start": f"{slot // 4:02d}:{slot % 4 * 15:02d}"}
            check = self.client.post(
                f"/people/{person_id}/book",
                name="booking check (live)",
                data=fields | {"action": "check"},
                headers={"X-Requested-With": "fetch"},
            )
            clash = 'id="override_reason"' in (check.text or "")
            if not clash:
                break
        if random.random() < 0.5:
            return  # checked, and decided otherwise
        think(0.5, 1.5)
        chosen = fields | {"action": "book"}
        if clash:
            chosen["override_reason"] = "Enda tiden före utskrivning"
        with self.client.post(
            f"/people/{person_id}/book",
            name="booking book",
            data=chosen,
            allow_redirects=False,
            catch_response=True,
        ) as answer:
            if answer.status_code != 302:
                answer.failure(f"booking answered {answer.status_code}")
                return
            target = answer.headers.get("Location") or f"/people/{person_id}/week"
        self.client.get(target, name="caregiver week")


UNCHANGED, MOVED = "push unchanged", "push update (moved)"


class ProviderSystem(FastHttpUser):
    """A unit's booking system pushing its changes, one unit per virtual user in turn."""

    weight = 1
    wait_time = paced(0.5, 1.5)
    _numbers = itertools.count()

    def on_start(self) -> None:
        pushers = users()["pushers"]
        self.pusher = pushers[next(self._numbers) % len(pushers)]
        self.headers = {"Authorization": f"Bearer {self.pusher['token']}"}
        # What this system last sent for each of its booking ids.
        self.sent: dict[str, dict[str, Any]] = {
            b["id"]: {k: v for k, v in b.items() if k != "id"} for b in self.pusher["bookings"]
        }

    def put(self, external_id: str, body: dict[str, Any], name: str, expected: int) -> None:
        with self.client.put(
            f"/api/v1/push/bookings/{external_id}",
            name=name,
            json=body,
            headers=self.headers,
            catch_response=True,
        ) as answer:
            if answer.status_code != expected:
                answer.failure(f"{name} answered {answer.status_code}: {answer.text[:200]}")
                return
            if name == UNCHANGED and answer.json().get("result") != "unchanged":
                # Another system user of the unit moved it meanwhile: this push updated it.
                answer.request_meta["name"] = MOVED
        self.sent[external_id] = body

    @task(2)
    def create(self) -> None:
        pnr, _person_id = random.choice(self.pusher["people"])
        day = datetime.now(ZONE).date() + timedelta(days=random.randrange(1, 90))
        if day.weekday() >= 5:
            day += timedelta(days=7 - day.weekday())
        slot = random.randrange(8 * 4, 16 * 4)
        start = datetime(day.year, day.month, day.day, slot // 4, slot % 4 * 15, tzinfo=ZONE)
        body = {
            "personnummer": pnr,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=45)).isoformat(),
            "title": "Återbesök",
            "location": "Mottagningen",
            "practitioner_name": "Sara Nilsson",
            "mode": "in_person",
        }
        self.put(f"lt-{uuid.uuid4().hex}", body, "push create", 201)

    @task(5)
    def move(self) -> None:
        external_id = random.choice(list(self.sent))
        body = dict(self.sent[external_id])
        shift = timedelta(minutes=15 * random.choice((-8, -4, -2, 2, 4, 8, 96, 672)))
        start = datetime.fromisoformat(body["start"]) + shift
        end = datetime.fromisoformat(body["end"]) + shift
        if start < datetime.now(UTC) + timedelta(hours=2):
            start, end = start + timedelta(days=14), end + timedelta(days=14)
        body |= {"start": start.isoformat(), "end": end.isoformat(), "status": "booked"}
        self.put(external_id, body, MOVED, 200)

    @task(2)
    def same_again(self) -> None:
        external_id = random.choice(list(self.sent))
        self.put(external_id, self.sent[external_id], UNCHANGED, 200)

    @task(1)
    def cancel(self) -> None:
        external_id = random.choice(list(self.sent))
        with self.client.delete(
            f"/api/v1/push/bookings/{external_id}",
            name="push cancel",
            headers=self.headers,
            catch_response=True,
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"push cancel answered {answer.status_code}")
                return
        self.sent[external_id] = self.sent[external_id] | {"status": "cancelled"}
