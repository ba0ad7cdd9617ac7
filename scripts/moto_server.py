"""Starts moto's server with DynamoDB requests applied one at a time.

moto serves requests on several threads. Its TransactWriteItems checks every condition before
applying any write and holds no lock, so two concurrent transactions can both pass a condition
that only one of them should pass. For example, two increments guarded by
`licences_in_use < plan_seats` can both succeed at 24 of 25 seats. DynamoDB never lets that
happen: it serialises conflicting transactions and rejects the loser with TransactionConflict. Holding one lock per
DynamoDB request gives moto the same guarantee. Other services, such as SQS long polling,
keep running concurrently.

Usage: python scripts/moto_server.py HOST PORT
"""

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
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with DYNAMODB_LOCK:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                if hasattr(body, "close"):
                    body.close()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # moto builds queue URLs from this, as its own server entry point does.
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialisedDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
