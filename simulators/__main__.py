"""Run a simulator: `python -m simulators sendgrid --port 8025`."""

from __future__ import annotations

import argparse

import uvicorn

from simulators.core import Provider, Simulator
from simulators.fcm import FcmSimulator
from simulators.sendgrid import SendGridSimulator
from simulators.twilio import TwilioSimulator

PROVIDERS: dict[str, type[Provider]] = {
    "sendgrid": SendGridSimulator,
    "twilio": TwilioSimulator,
    "fcm": FcmSimulator,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("provider", choices=sorted(PROVIDERS))
    parser.add_argument("--host", default="127.0.0.1")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    # A listening socket inherited from the launcher (make run, the test harness), which bound
    # it: no port is chosen, released and bound again here.
    where.add_argument("--fd", type=int, help="serve on this inherited listening socket")
    args = parser.parse_args()
    app = Simulator(PROVIDERS[args.provider]())
    uvicorn.run(
        app, host=args.host, port=args.port or 0, fd=args.fd, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
