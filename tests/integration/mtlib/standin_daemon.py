"""A stand-in for the mailtunnel binary, used only by the runner self-test.

It understands just enough to exercise daemon.Mailtunnel: `-f CONFIG`
listens on every `accept = HOST:PORT` line and logs to stderr; HUP re-reads
the config (and listens on new ports), USR1 logs a statistics line, TERM
exits 0. `-t CONFIG` prints the accept lines and exits 0, or exits 78 with
an error for a line without "=". Never use it to test mailtunnel itself.
"""
import signal
import socket
import sys
import time


def parse(path):
    accepts = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith((";", "#", "[")):
                continue
            if "=" not in line:
                raise ValueError(f"{path}:{n}: line without '=': {line}")
            key, value = (s.strip() for s in line.split("=", 1))
            if key == "accept":
                host, port = value.rsplit(":", 1)
                accepts.append((host, int(port)))
    return accepts


def log(msg):
    print(f"standin: {msg}", file=sys.stderr, flush=True)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    try:
        accepts = parse(path)
    except ValueError as e:
        print(f"standin: {e}", file=sys.stderr)
        sys.exit(78)
    if mode == "-t":
        for host, port in accepts:
            print(f"accept = {host}:{port}")
        sys.exit(0)
    state = {"socks": {}, "hup": False, "usr1": False, "term": False}

    def listen(addrs):
        for addr in addrs:
            if addr not in state["socks"]:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(addr)
                s.listen(8)
                state["socks"][addr] = s
                log(f"listening on {addr[0]}:{addr[1]}")

    for sig, key in ((signal.SIGHUP, "hup"), (signal.SIGUSR1, "usr1"),
                     (signal.SIGTERM, "term")):
        signal.signal(sig, lambda *_, k=key: state.__setitem__(k, True))
    listen(accepts)
    while not state["term"]:
        time.sleep(0.01)
        if state["hup"]:
            state["hup"] = False
            log("reloading configuration")
            listen(parse(path))
        if state["usr1"]:
            state["usr1"] = False
            log(f"statistics: {len(state['socks'])} listeners")
    log("shutting down")
    sys.exit(0)


if __name__ == "__main__":
    main()
