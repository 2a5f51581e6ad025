"""Command line of the mock external service: `mock-external` or `python -m mock_external`."""

from __future__ import annotations

import argparse
import logging
import os

from aiohttp import web

from mock_external.app import create_app, format_fields
from mock_external.faults import Faults, InvalidFaultsError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
SECRET_ENV = "MOCK_EXTERNAL_SECRET"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Fault field -> the option that sets it, for error messages.
_FAULT_OPTIONS = {
    "failure_rate": "--failure-rate",
    "status": "--fail-status",
    "retry_after_s": "--retry-after",
    "latency_ms": "--latency-ms",
    "down": "--down",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock-external",
        description=(
            "Run a stand-in for the external service that receives daily-total events "
            "on POST /daily-totals, with faults that can be changed at runtime on PUT /faults."
        ),
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"Set the address to listen on (default {DEFAULT_HOST}).",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"Set the TCP port (default {DEFAULT_PORT})."
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get(SECRET_ENV) or None,
        help=(
            "Set the Standard Webhooks secret (whsec_ followed by base64) that event POSTs "
            f"must be signed with (default: ${SECRET_ENV}). Without a secret, signatures "
            "are not checked."
        ),
    )
    parser.add_argument(
        "--failure-rate",
        type=float,
        default=0.0,
        metavar="RATE",
        help="Set the probability, from 0 to 1, that an event POST gets a 500 (default 0).",
    )
    parser.add_argument(
        "--fail-status",
        type=int,
        metavar="STATUS",
        help=(
            "Set an HTTP error status (400 to 599) to respond to every event POST with, "
            "such as 429, 500 or 503. It overrides --failure-rate."
        ),
    )
    parser.add_argument(
        "--retry-after",
        type=int,
        metavar="SECONDS",
        help="Set the Retry-After header in seconds, sent with a --fail-status of 429 or 503.",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        metavar="MS",
        default=0,
        help="Set the delay in milliseconds before each event POST is handled (default 0).",
    )
    parser.add_argument(
        "--down",
        action="store_true",
        help="Close the connection of every event POST without a response.",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse the options and serve the mock until SIGINT or SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults.from_mapping(
            {
                "failure_rate": args.failure_rate,
                "status": args.fail_status,
                "retry_after_s": args.retry_after,
                "latency_ms": args.latency_ms,
                "down": args.down,
            }
        )
        app = create_app(args.secret, faults)
    except InvalidFaultsError as exc:
        option = _FAULT_OPTIONS[exc.field]
        parser.error(f"argument {option}: {exc.reason}")
    except ValueError as exc:
        parser.error(f"argument --secret: {exc}")

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logger.info(
        "starting mock-external host=%s port=%d signature_check=%s %s",
        args.host,
        args.port,
        "on" if args.secret is not None else "off",
        format_fields(faults.to_dict()),
    )
    # run_app calls `print` once the port is bound, so a taken port never shows as listening.
    listening = f"mock-external listening on http://{args.host}:{args.port}"
    web.run_app(
        app, host=args.host, port=args.port, print=lambda _banner: print(listening, flush=True)
    )
    logger.info("stopped mock-external")
