"""Starts moto's server with DynamoDB requests applied one at a time.

moto serves requests on several threads. Its TransactWriteItems checks every condition before
applying any write and holds no lock, so two concurrent transactions can both pass a condition
that only one of them should pass. For example, two increments guarded by
`licences_in_use < plan_seats` can both succeed at 24 of 25 seats. DynamoDB never lets that
happen: it serialises conflicting transactions and rejects the loser with TransactionConflict. Holding one lock per
DynamoDB request gives moto the same guarantee. Other services, such as SQS long polling,
keep running concurrently.

It also serves `GET /rollcall-local/ses/sent-messages`: the emails SES accepted, as JSON, read
from moto's SES backend (moto's documented internal API). Tests read the mails they caused
there; `/moto-api/data.json` has them too but serialises every model of every service.

Usage: python scripts/moto_server.py HOST PORT
"""

import json
import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB_LOCK = threading.Lock()


class SerialisedDynamoDB:
    """WSGI middleware that runs each DynamoDB request, response body included, under one lock."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/rollcall-local/ses/sent-messages":
            return sent_messages(start_response)
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with DYNAMODB_LOCK:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                if hasattr(body, "close"):
                    body.close()


def sent_messages(start_response):
    """Returns every email moto's SES accepted, in every account and region."""
    from moto.ses.models import ses_backends

    messages = []
    for account in ses_backends.values():
        for backend in account.values():
            for message in backend.sent_messages:
                messages.append(
                    {
                        "source": getattr(message, "source", None),
                        "destinations": getattr(message, "destinations", None),
                        "subject": getattr(message, "subject", None),
                        "body": getattr(message, "body", None),
                    }
                )
    body = json.dumps(messages).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # moto builds queue URLs from this, as its own server entry point does.
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialisedDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
