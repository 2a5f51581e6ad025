"""Locust users for `make bench`: webhook senders and dashboard readers of Message Counter.

`python -m tests.bench.run` starts the servers on loopback and runs this file with
`--host`. Both user classes send their next request as soon as the previous response
arrives, so with weights 9:1 about nine requests in ten are webhooks.

Options added to locust's command line (or LOCUST_* variables of the same name):
  --duplicate-share  share of webhook POSTs that resend one of the user's earlier messages
  --account-count    accounts the messages and the dashboard queries are spread over
  --outcomes-file    file that receives the tally of webhook outcomes as JSON at exit
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from locust import FastHttpUser, constant, events, task
from locust.env import Environment

WEBHOOK_PATH = "/webhooks/messages"
WEBHOOK_NAME = "POST /webhooks/messages"
COUNTS_PATH = "/counts"
COUNTS_NAME = "GET /counts"
JSON_HEADERS = {"content-type": "application/json"}

DEFAULT_DUPLICATE_SHARE = 0.1
DEFAULT_ACCOUNT_COUNT = 1000
FIRST_DAY = datetime(2025, 9, 17, tzinfo=UTC)
DAYS = 3
SECONDS_PER_DAY = 24 * 3600
DASHBOARD_WINDOW = timedelta(hours=24)
# Counted messages a user keeps for resending. Older ones are never resent.
RESEND_HISTORY = 1000

# Message ids are unique across locust processes and across the users of one process.
RUN_ID = uuid.uuid4().hex[:8]
_user_numbers = itertools.count()

# Webhook outcomes of this process: counted (202), duplicate (200) and failed (anything else).
OUTCOMES: Counter[str] = Counter()


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument(
        "--duplicate-share",
        type=float,
        default=DEFAULT_DUPLICATE_SHARE,
        env_var="LOCUST_DUPLICATE_SHARE",
        help="share of webhook POSTs, 0 to 1, that resend an earlier message (default 0.1)",
    )
    parser.add_argument(
        "--account-count",
        type=int,
        default=DEFAULT_ACCOUNT_COUNT,
        env_var="LOCUST_ACCOUNT_COUNT",
        help="number of accounts the messages are spread over (default 1000)",
    )
    parser.add_argument(
        "--outcomes-file",
        default="",
        env_var="LOCUST_OUTCOMES_FILE",
        help="write the webhook outcomes (counted, duplicate, failed) to this JSON file at exit",
    )


@events.quitting.add_listener
def write_outcomes(environment: Environment, **kwargs: Any) -> None:
    path = environment.parsed_options.outcomes_file if environment.parsed_options else ""
    if path:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(dict(OUTCOMES), file)


def account_id(number: int) -> str:
    return f"acc_{number:04d}"


def format_utc(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


class WebhookSender(FastHttpUser):
    """Posts new messages, and resends a share of them as a retrying sender would."""

    weight = 9
    wait_time = constant(0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.duplicate_share: float = options.duplicate_share
        self.account_count: int = options.account_count
        self.id_prefix = f"bench-{RUN_ID}-{next(_user_numbers)}"
        self.sequence = itertools.count()
        self.sent: deque[str] = deque(maxlen=RESEND_HISTORY)

    @task
    def post_message(self) -> None:
        if self.sent and random.random() < self.duplicate_share:
            self.post(random.choice(self.sent), expected_status=200, outcome="duplicate")
            return
        body = self.new_message()
        # Only a counted message is a duplicate when resent. A message that got a 503 was
        # not counted, so its resend gets 202.
        if self.post(body, expected_status=202, outcome="counted"):
            self.sent.append(body)

    def new_message(self) -> str:
        created_at = FIRST_DAY + timedelta(seconds=random.randrange(DAYS * SECONDS_PER_DAY))
        message = {
            "message_id": f"{self.id_prefix}-{next(self.sequence)}",
            "account_id": account_id(random.randrange(self.account_count)),
            "created_at": format_utc(created_at),
            "metadata": {"channel": "whatsapp", "direction": "inbound"},
        }
        return json.dumps(message)

    def post(self, body: str, expected_status: int, outcome: str) -> bool:
        """POST one message and return whether the response had the expected status."""
        with self.client.post(
            WEBHOOK_PATH, data=body, headers=JSON_HEADERS, name=WEBHOOK_NAME, catch_response=True
        ) as response:
            if response.status_code == expected_status:
                OUTCOMES[outcome] += 1
                return True
            OUTCOMES["failed"] += 1
            response.failure(
                f"expected {expected_status} for a {outcome} message, got {response.status_code}"
            )
            return False


class DashboardReader(FastHttpUser):
    """Reads the hourly counts of a random account over a 24-hour window of the sent days."""

    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        self.account_count: int = self.environment.parsed_options.account_count

    @task
    def read_counts(self) -> None:
        start_hours = random.randrange(DAYS * 24 - DASHBOARD_WINDOW // timedelta(hours=1) + 1)
        start = FIRST_DAY + timedelta(hours=start_hours)
        query = urlencode(
            {
                "account_id": account_id(random.randrange(self.account_count)),
                "from": format_utc(start),
                "to": format_utc(start + DASHBOARD_WINDOW),
            }
        )
        with self.client.get(
            f"{COUNTS_PATH}?{query}", name=COUNTS_NAME, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {response.status_code}")
