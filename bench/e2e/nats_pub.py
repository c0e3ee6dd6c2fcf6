#!/usr/bin/python3
"""A NATS JetStream publisher for the benchmark harness, speaking the NATS client protocol
directly (Debian packages no Python NATS client; the protocol is documented at
https://docs.nats.io/reference/reference-protocols/nats-protocol).

As a script it publishes a file of "<msg id> <payload>" lines (sluice-blast --write-msgs)
to a subject with the `Nats-Msg-Id` header, each message with a reply subject so JetStream
acknowledges it (a PubAck, or an error), keeping at most --window messages unacknowledged
(what the official clients' async publish does, e.g. nats.go's PublishAsyncMaxPending), and
prints one JSON object: messages sent, acks, duplicates and errors JetStream reported,
seconds and the publisher's CPU seconds. The harness imports it for the stream requests.

Standard library only (it runs under Debian's /usr/bin/python3).
"""
import json
import resource
import socket
import sys
import threading
import time

ACK_SUBJECT = b"_INBOX.bench.acks"


def hpub(subject, reply, msg_id, payload):
    """One HPUB frame: a message with the Nats-Msg-Id header and a reply subject."""
    headers = b"NATS/1.0\r\nNats-Msg-Id: " + msg_id + b"\r\n\r\n"
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject, reply, len(headers),
                                              len(headers) + len(payload), headers, payload)


class Parser:
    """Splits the server's byte stream into protocol operations. feed() returns a list of
    ("MSG", sid, payload) / ("HMSG", sid, payload) / ("PING",) / ("ERR", text) /
    ("INFO", text); partial operations wait for the next feed."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out, pos, buf = [], 0, self.buf
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            line = bytes(buf[pos:eol])
            if line.startswith((b"MSG ", b"HMSG ")):
                parts = line.split()
                total = int(parts[-1])
                if eol + 2 + total + 2 > len(buf):
                    break  # the payload is not all here yet
                body = bytes(buf[eol + 2:eol + 2 + total])
                if parts[0] == b"HMSG":
                    body = body[int(parts[-2]):]  # headers first, then the payload
                out.append((parts[0].decode(), parts[2], body))
                pos = eol + 2 + total + 2
                continue
            if line == b"PING":
                out.append(("PING",))
            elif line.startswith(b"-ERR"):
                out.append(("ERR", line[5:].decode(errors="replace")))
            elif line.startswith(b"INFO "):
                out.append(("INFO", line[5:].decode(errors="replace")))
            pos = eol + 2  # +OK, PONG: nothing to do
        del buf[:pos]
        return out


def connect(port, host="127.0.0.1", timeout=30):
    """A connected socket past the handshake (INFO, CONNECT with headers, PING/PONG)."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    info = f.readline()
    if not info.startswith(b"INFO "):
        raise RuntimeError(f"not a NATS server on port {port}: {info[:80]!r}")
    opts = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
            "protocol": 1, "lang": "python-raw", "version": "1"}
    s.sendall(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError("NATS server closed the connection at CONNECT")
        if line.startswith(b"-ERR"):
            raise RuntimeError(f"NATS CONNECT refused: {line.decode().strip()}")
        if line.startswith(b"PONG"):
            return s


def request(port, subject, payload, timeout=30):
    """One request/reply (e.g. $JS.API.STREAM.CREATE.<name>): the decoded JSON reply."""
    s = connect(port, timeout=timeout)
    try:
        inbox = b"_INBOX.bench.req"
        s.sendall(b"SUB %s 1\r\nPUB %s %s %d\r\n%s\r\n" % (inbox, subject.encode(), inbox,
                                                           len(payload), payload))
        p = Parser()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = s.recv(1 << 16)
            if not data:
                break
            for op in p.feed(data):
                if op[0] == "PING":
                    s.sendall(b"PONG\r\n")
                elif op[0] == "ERR":
                    raise RuntimeError(f"NATS: {op[1]}")
                elif op[0] in ("MSG", "HMSG"):
                    if not op[2]:  # a no-responders status: nobody serves the subject
                        raise RuntimeError(f"NATS: no responders on {subject} (is JetStream "
                                           "enabled? nats-server -js)")
                    return json.loads(op[2])
        raise RuntimeError(f"NATS: no reply on {subject} within {timeout} s")
    finally:
        s.close()


def publish(port, subject, lines, window, chunk=256):
    """Publishes lines of b"<id> <payload>" with acks; returns the tally (setup_s: the
    seconds spent connecting and framing before the first message left)."""
    t_setup = time.monotonic()
    s = connect(port)
    s.settimeout(None)
    s.sendall(b"SUB %s 1\r\n" % ACK_SUBJECT)
    subj = subject.encode()
    frames = []
    for i in range(0, len(lines), chunk):
        frames.append(b"".join(hpub(subj, ACK_SUBJECT, *l.split(b" ", 1))
                               for l in lines[i:i + chunk]))
    total = len(lines)
    tally = {"sent": 0, "acks": 0, "duplicates": 0, "errors": 0, "first_error": None}
    cond = threading.Condition()

    def reader():
        p = Parser()
        while True:
            try:
                data = s.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                with cond:
                    tally["closed"] = True
                    cond.notify_all()
                return
            acks = dups = errs = 0
            for op in p.feed(data):
                if op[0] == "PING":
                    s.sendall(b"PONG\r\n")
                elif op[0] == "ERR":
                    tally["first_error"] = tally["first_error"] or op[1]
                elif op[0] in ("MSG", "HMSG"):
                    acks += 1
                    body = op[2]
                    if b'"error"' in body or not body:
                        errs += 1
                        tally["first_error"] = tally["first_error"] or \
                            (body.decode(errors="replace") or "no responders")
                    elif b'"duplicate"' in body:  # {..., "duplicate": true}
                        dups += 1
            with cond:
                tally["acks"] += acks
                tally["duplicates"] += dups
                tally["errors"] += errs
                cond.notify_all()
                if tally["acks"] >= total:
                    return

    t0 = time.monotonic()
    tally["setup_s"] = t0 - t_setup
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    for i, frame in enumerate(frames):
        n = min(chunk, total - i * chunk)
        with cond:
            while tally["sent"] - tally["acks"] + n > window and not tally.get("closed"):
                cond.wait(1)
            if tally.get("closed"):
                break
        s.sendall(frame)
        with cond:
            tally["sent"] += n
    with cond:
        while tally["acks"] < tally["sent"] and not tally.get("closed"):
            cond.wait(1)
    seconds = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    s.close()
    tally["seconds"] = seconds
    tally["cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    tally.pop("closed", None)
    return tally


def main():
    port, subject, path, window = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    t0 = time.monotonic()
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    read_s = time.monotonic() - t0
    out = publish(port, subject, lines, window)
    out["setup_s"] += read_s
    out["window"] = window
    print(json.dumps(out), flush=True)
    return 0 if out["acks"] == out["sent"] == len(lines) and not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
