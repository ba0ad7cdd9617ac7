"""Starts moto's server with DynamoDB requests applied one at a time.

moto serves requests on several threads. Its TransactWriteItems checks every condition before
applying any write and holds no lock, so two concurrent transactions can both pass a condition
that only one of them should pass. For example, two increments guarded by
`licences_in_use < plan_seats` can both succeed at 24 of 25 seats. DynamoDB never lets that
happen: it serialises conflicting transactions and rejects the loser with TransactionConflict. Holding one lock per
DynamoDB request gives moto the same guarantee. Other services, such as SQS long polling,
keep running concurrently.

moto also saves a deep copy of every table a transaction writes to, so that it can roll back.
Each TransactWriteItems then takes time in proportion to the table's size, and a directory
sync that creates 10,000 employees would take hours. Because DynamoDB requests run one at a
time here, saving only the items the transaction names, and restoring them if it fails, gives
the same result. `save_only_transaction_items` installs that.

It also serves `GET /rollcall-local/ses/sent-messages`: the emails SES accepted, as JSON, read
from moto's SES backend (moto's documented internal API). Tests read the mails they caused
there; `/moto-api/data.json` has them too but serialises every model of every service.

Usage: python scripts/moto_server.py HOST PORT
"""

import copy
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


def save_only_transaction_items() -> None:
    """Makes TransactWriteItems save and restore the items it names instead of whole tables."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            try:
                _, operation = next(iter(entry.items()))
                table = self.tables[operation["TableName"]]
                attributes = operation.get("Key") or operation["Item"]
                hash_value = DynamoType(attributes[table.hash_key_attr])
                range_value = (
                    DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
                )
            except (KeyError, StopIteration, TypeError, AttributeError):
                # moto itself rejects a malformed operation before writing anything.
                continue
            current = table.get_item(hash_value, range_value)
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
        # moto's own backup becomes the live table, so its rollback changes nothing.
        Table.__deepcopy__ = lambda table, memo: table
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                restore(table, hash_value, range_value, item)
            raise
        finally:
            del Table.__deepcopy__

    DynamoDBBackend.transact_write_items = transact_write_items


def restore(table, hash_value, range_value, item) -> None:
    """Puts an item back as it was before a failed transaction, or removes it if it was new."""
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    partition = table.items[hash_value]
    if item is None:
        partition.pop(range_value, None)
        if not partition:
            table.items.pop(hash_value, None)
    else:
        partition[range_value] = item


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # moto builds queue URLs from this, as its own server entry point does.
    os.environ.setdefault("MOTO_PORT", str(port))
    save_only_transaction_items()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialisedDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
