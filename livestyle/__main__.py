"""`python -m livestyle` and the `livestyle` command."""

import os
import signal
import sys

from livestyle.interrupts import caused_by_ctrl_c


def entry() -> None:
    try:
        from livestyle.cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C while Python loads the CLI, or one left pending by it
        code = 130
    except ImportError as e:  # numpy, among others, reports a Ctrl-C during its import so
        if not caused_by_ctrl_c(e):
            raise
        code = 130
    if code == 130:
        # stopped by a signal and already said so, every output closed: leave now. Another
        # Ctrl-C may sit pending inside a native library call, and a native library stopped
        # half-way through its start (OpenVINO's threads) aborts in its exit-time destructors
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    entry()
