#!/usr/bin/env python3
"""Load and abuse numbers for `cm4j serve` (a benchmark, not a test): run against a server
already listening on loopback.

  serve-load.py clients URL [--seconds S] [--body JSON]   images/s and latency percentiles
  serve-load.py slow URL --connections N                    N slowloris connections held while
                                                            a normal client is served
  serve-load.py full URL                                    time to a 503 while the queue is full
"""
import argparse, http.client, json, socket, statistics, sys, threading, time
from urllib.parse import urlparse


def post(host, port, body, timeout=120):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    start = time.perf_counter()
    conn.request("POST", "/generate", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status, time.perf_counter() - start


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def clients(host, port, n, seconds, body):
    latencies, statuses, lock = [], {}, threading.Lock()
    end = time.perf_counter() + seconds

    def loop(i):
        k = 0
        while time.perf_counter() < end:
            b = json.loads(body)
            b["seed"] = 1000 * i + k
            k += 1
            status, took = post(host, port, json.dumps(b))
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(took)

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    print(f"{n} clients, {wall:.1f} s: {len(latencies) / wall:.2f} images/s, latency ms "
          f"p50 {1000 * pct(latencies, 0.5):.0f} p99 {1000 * pct(latencies, 0.99):.0f}, "
          f"answers {statuses}")


def slow(host, port, n, body):
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.sendall(b"P")
        socks.append(s)
    time.sleep(1)
    for _ in range(3):
        for s in socks:
            s.sendall(b"O")
        status, took = post(host, port, body, timeout=30)
        print(f"{n} slow connections open: a normal request got {status} in {1000 * took:.0f} ms")
        time.sleep(1)
    alive = 0
    for s in socks:
        try:
            s.sendall(b"S")
            alive += 1
        except OSError:
            pass
        s.close()
    print(f"{alive} of {n} slow connections still open at the end")


def full(host, port, body):
    # Keep the worker and the queue busy with long requests, then time the next one.
    b = json.loads(body)
    b["steps"] = 40
    busy = [threading.Thread(target=post, args=(host, port, json.dumps(b)))
            for _ in range(6)]
    for t in busy:
        t.start()
    time.sleep(0.3)
    times = []
    for _ in range(20):
        status, took = post(host, port, body)
        if status == 503:
            times.append(took)
    print(f"queue full: {len(times)} of 20 got 503, time to 503 ms median "
          f"{1000 * statistics.median(times):.2f} max {1000 * max(times):.2f}")
    for t in busy:
        t.join()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["clients", "slow", "full"])
    p.add_argument("url")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--body", default='{"class": 1, "steps": 1}')
    a = p.parse_args()
    u = urlparse(a.url)
    if a.mode == "clients":
        clients(u.hostname, u.port, a.clients, a.seconds, a.body)
    elif a.mode == "slow":
        slow(u.hostname, u.port, a.connections, a.body)
    else:
        full(u.hostname, u.port, a.body)
