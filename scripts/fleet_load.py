#!/usr/bin/env python3
"""The mixed load of scripts/fleet.sh, with Python's standard library only.

Each worker, from a loopback address of its own (so per-address limits see
several clients), registers a user, logs in, and loops until the time is up:
forward auth and users/me with the access token, refreshes with rotation,
logouts followed by a new login, and now and then a burst of wrong
passwords (which the throttle refuses). After each logout the logged-out
refresh token is presented to every instance directly: none may accept it.
Prints the counts; exits 1 if a revoked token was accepted or more than 1%
of the requests failed (5xx or no answer).
"""

import argparse
import collections
import http.client
import json
import random
import threading
import time
import urllib.parse

PASSWORD = "Fleet-Pa55word-9481"


class Client:
    def __init__(self, base, source_ip):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.source = (source_ip, 0)
        self.conn = None

    def call(self, method, path, body=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(
                        self.host, self.port, timeout=10, source_address=self.source)
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                try:
                    return resp.status, json.loads(raw) if raw else None
                except ValueError:
                    return resp.status, None
            except (OSError, http.client.HTTPException):
                self.conn = None
                # A keep-alive connection the server closed: once more.
                if attempt == 1:
                    return None, None
        return None, None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.revoked_tried = 0
        self.revoked_refused = 0
        self.revoked_accepted = 0
        self.revoked_other = collections.Counter()
        self.unreachable = 0
        self.logouts = 0

    def count(self, status):
        with self.lock:
            self.statuses["none" if status is None else status] += 1


def worker(n, args, stats, deadline):
    source = f"127.0.0.{10 + n}"
    api = Client(args.base, source)
    direct = [Client(url, source) for url in args.instances.split(",")]
    name = f"fleet_{n}_{random.randrange(10**9)}"

    def call(*a, **kw):
        status, body = api.call(*a, **kw)
        stats.count(status)
        return status, body

    def login():
        status, body = call("POST", "/api/token/", {"username": name, "password": PASSWORD})
        return (body["refresh"], body["access"]) if status == 200 else (None, None)

    while time.time() < deadline:
        status, _ = call("POST", "/api/v1/auth/users/",
                         {"username": name, "password": PASSWORD, "email": f"{name}@example.com"})
        if status == 201:
            break
        time.sleep(0.5)
    refresh, access = login()
    while time.time() < deadline:
        if refresh is None:
            time.sleep(0.2)
            refresh, access = login()
            continue
        roll = random.random()
        if roll < 0.45:
            call("GET", "/api/v1/auth/forward/", token=access)
        elif roll < 0.65:
            call("GET", "/api/v1/auth/users/me/", token=access)
        elif roll < 0.85:
            status, body = call("POST", "/api/token/refresh/", {"refresh": refresh})
            if status == 200:
                refresh, access = body["refresh"], body["access"]
        elif roll < 0.95:
            status, _ = call("POST", "/api/token/blacklist/", {"refresh": refresh})
            if status == 200:
                with stats.lock:
                    stats.logouts += 1
                for inst in direct:
                    s, _ = inst.call("POST", "/api/token/refresh/", {"refresh": refresh})
                    with stats.lock:
                        if s is None:
                            stats.unreachable += 1
                            continue
                        stats.revoked_tried += 1
                        if s == 200:
                            stats.revoked_accepted += 1
                        elif s == 401:
                            stats.revoked_refused += 1
                        else:
                            stats.revoked_other[s] += 1
            refresh, access = login()
        else:
            for _ in range(3):
                call("POST", "/api/token/", {"username": name, "password": "wrong-guess"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--instances", required=True)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    stats = Stats()
    started = time.time()
    deadline = started + args.duration
    threads = [threading.Thread(target=worker, args=(n, args, stats, deadline), daemon=True)
               for n in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.duration + 30)
    elapsed = time.time() - started
    total = sum(stats.statuses.values())
    failed = sum(c for s, c in stats.statuses.items() if s == "none" or (isinstance(s, int) and s >= 500))
    by_status = ", ".join(f"{s}: {c}" for s, c in sorted(stats.statuses.items(), key=lambda x: str(x[0])))
    print(f"fleet: {total} requests through nginx in {elapsed:.0f} s ({total / elapsed:.0f}/s): {by_status}")
    print(f"fleet: failed (5xx or no answer): {failed} ({100 * failed / max(total, 1):.2f}%); "
          f"throttled (429): {stats.statuses.get(429, 0)}")
    other = ", ".join(f"{s}: {c}" for s, c in sorted(stats.revoked_other.items())) or "none"
    print(f"fleet: {stats.logouts} logouts; their refresh tokens tried on each instance directly "
          f"{stats.revoked_tried} times (instance down: {stats.unreachable}): "
          f"refused with 401 {stats.revoked_refused} times, accepted {stats.revoked_accepted} times, "
          f"other answers: {other}")
    # A kill loses at most the requests in flight on that instance, one per
    # worker: allowed beside 1% of the rest.
    allowed = max(total / 100, args.workers)
    ok = (stats.revoked_accepted == 0 and not stats.revoked_other
          and failed <= allowed and total > 0 and stats.revoked_refused > 0)
    print("fleet: OK" if ok else "fleet: FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
