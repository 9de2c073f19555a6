"""Running one test script: exit codes, signals, cases, cleanup.

    def main(t):          # t is the TestEnv
        with t.case("pop3s accepts the good certificate"):
            ...
    mtlib.run(main)

run() never returns. Exit 0 when every case passed, 1 otherwise (automake:
PASS/FAIL). A case that fails is reported and the next case runs; an error
outside any case ends the test. SIGTERM, SIGINT and SIGHUP end the test as a
failure after cleanup; cleanup also runs from atexit as a last resort.
"""
import os
import signal
import sys
import traceback

from .env import Interrupted, TestEnv, TestFailure

_current = None


def current():
    """The TestEnv of the running test (None outside run())."""
    return _current


def _on_signal(signum, frame):
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def _ignore_signals():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def _report_procs(t):
    """Print the end of every child's output: the clues for a failure."""
    for proc in t.procs:
        if proc.log_path and os.path.exists(proc.log_path):
            print(proc.tail(25), file=sys.stderr)


def run(main, name=None, netns=None):
    """Run main(t) in a fresh TestEnv, clean up, and exit with the verdict.

    netns: a netns.Namespace to run the whole test inside a private network
    namespace (re-executes the script under unshare; needs root).
    """
    global _current
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    if netns is not None:
        from . import netns as ns
        if not ns.inside():
            sys.exit(ns.reexec(netns))
    t = TestEnv(name)  # registers its cleanup with atexit too
    _current = t
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    code = 1
    try:
        if netns is not None:
            from . import netns as ns
            ns.setup_inside(t, netns)
        main(t)
        if not t.passed and not t.failed:
            t.passed.append(name)  # a test without cases is one case
        code = 1 if t.failed else 0
    except Interrupted as e:
        print(f"FAIL: {name}: {e}", file=sys.stderr)
    except TestFailure as e:
        print(f"FAIL: {name}: {e}", file=sys.stderr)
    except Exception:
        print(f"FAIL: {name}: unexpected error\n{traceback.format_exc()}",
              file=sys.stderr)
    finally:
        _ignore_signals()  # a second ^C must not cut the cleanup short
        if code != 0:
            _report_procs(t)
            if not t.keep:
                print("mtlib: set MT_KEEP=1 to keep the test folder",
                      file=sys.stderr)
        t.cleanup()
    print(f"{name}: {len(t.passed)} passed, {len(t.failed)} failed", flush=True)
    sys.stderr.flush()
    # Helper threads (Python test servers) must not keep the process alive.
    os._exit(code)
