#!/usr/bin/python3
"""Unit test of bench/e2e/nats_pub.py's protocol code without a server: the HPUB frame
(header and total byte counts, the Nats-Msg-Id header) and the parser of the server's
stream (operations split across reads, HMSG headers skipped, PING, -ERR)."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "e2e"))
import nats_pub  # noqa: E402


class NatsPubTest(unittest.TestCase):
    def test_hpub_frame_counts_headers_and_payload(self):
        frame = nats_pub.hpub(b"events", b"_INBOX.a", b"00ff", b'{"x":1}')
        head, rest = frame.split(b"\r\n", 1)
        headers = b"NATS/1.0\r\nNats-Msg-Id: 00ff\r\n\r\n"
        self.assertEqual(head, b"HPUB events _INBOX.a %d %d" % (len(headers), len(headers) + 7))
        self.assertEqual(rest, headers + b'{"x":1}\r\n')

    def test_parser_splits_operations_across_reads(self):
        stream = (b'MSG _INBOX.a 1  31\r\n{"stream":"EVENTS", "seq":1906}\r\nPING\r\n'
                  b'MSG _INBOX.a 1  49\r\n{"stream":"EVENTS", "seq":1906,"duplicate": true}'
                  b'\r\nHMSG _INBOX.a 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n'
                  b"-ERR 'Slow Consumer'\r\n")
        for cut in range(1, len(stream)):
            p = nats_pub.Parser()
            ops = p.feed(stream[:cut]) + p.feed(stream[cut:])
            self.assertEqual(ops, [
                ("MSG", b"1", b'{"stream":"EVENTS", "seq":1906}'),
                ("PING",),
                ("MSG", b"1", b'{"stream":"EVENTS", "seq":1906,"duplicate": true}'),
                ("HMSG", b"1", b""),  # a no-responders status: headers only
                ("ERR", "'Slow Consumer'"),
            ], cut)
            self.assertEqual(p.buf, bytearray())

    def test_parser_keeps_a_partial_payload(self):
        p = nats_pub.Parser()
        self.assertEqual(p.feed(b"MSG a 1 10\r\n01234"), [])
        self.assertEqual(p.feed(b"56789\r\n"), [("MSG", b"1", b"0123456789")])


if __name__ == "__main__":
    unittest.main()
