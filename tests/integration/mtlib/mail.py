"""Test messages: generated RFC 5322 messages with unique Message-IDs."""
import email.parser
import email.policy
import random

_LINE = b"The quick brown fox jumps over the lazy dog, message %06d.\r\n"


def make_message(i, size=2000, domain="mail.test", subject=None,
                 extra_headers=()):
    """Message number i, about size bytes, CRLF line ends.

    Message-ID is <mtlib-I@DOMAIN>, unique per i; the body repeats one line
    naming i, so any two messages differ and truncation is visible.
    """
    headers = [
        b"Return-Path: <sender@example.org>",
        b"Message-ID: " + message_id(i, domain).encode(),
        b"From: Sender <sender@example.org>",
        b"To: Box <box@" + domain.encode() + b">",
        b"Subject: " + (subject or f"test message {i}").encode(),
        b"Date: Sun, 22 Nov 2026 10:00:00 +0000",
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=us-ascii",
    ] + [h.encode() if isinstance(h, str) else h for h in extra_headers]
    head = b"\r\n".join(headers) + b"\r\n\r\n"
    line = _LINE % i
    count = max(1, (size - len(head)) // len(line))
    return head + line * count


def message_id(i, domain="mail.test"):
    return f"<mtlib-{i:06d}@{domain}>"


def make_messages(n, sizes=(2000,), seed=1, domain="mail.test"):
    """n messages, sizes drawn (reproducibly) from sizes."""
    rnd = random.Random(seed)
    return [make_message(i, rnd.choice(sizes), domain) for i in range(n)]


def parse(raw):
    """An email.message.EmailMessage from bytes (for header checks)."""
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)


def header(raw, name):
    """The value of header name in raw message bytes, or None."""
    value = parse(raw)[name]
    return None if value is None else str(value).strip()
