"""moto's server, serving one request at a time, with transactions that do not copy tables.

Two fixes to moto as the test equipment Berth's AWS-stack tests run against:

- The stock `moto_server` runs requests on parallel threads without locking, so its DynamoDB
  `TransactWriteItems` is not isolated: two transactions conditioned on the same stream version can
  both succeed, which real DynamoDB (serializable transactions) never allows. Serving requests one
  at a time restores the isolation the event log's optimistic concurrency relies on.
- moto's `TransactWriteItems` deep-copies every table it touches (items and stream records) to roll
  back on failure: each transaction costs time and memory in proportion to everything the table
  ever held, so a long test run slows down quadratically (a full end-to-end run grew moto past
  20 GiB and starved the machine). With requests served one at a time and no item written twice in
  a transaction, checking every condition first and writing afterwards has the same all-or-nothing
  outcome; the few writes that can still fail (an item over the size limit, a bad update
  expression) are undone item by item.

Usage: python moto_serial.py HOST PORT
"""

import os
import sys
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # Phase 1: shapes, one operation per item, and every condition against the state before the
    # transaction. Nothing is written yet.
    plan = []
    touched: set[tuple[str, str]] = set()
    reasons: list[tuple[Any, Any, Any]] = []
    for entry in transact_items:
        if len(entry) != 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        table_name = op["TableName"]
        table = self.get_table(table_name)
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        identity = (str(table_name), str(dict(sorted(key.items()))))
        if identity in touched:
            raise MultipleTransactionsException()
        touched.add(identity)
        current = self.get_item(table_name, key)
        condition = op.get("ConditionExpression")
        names = op.get("ExpressionAttributeNames")
        values = op.get("ExpressionAttributeValues")
        if condition is not None and not get_filter_expression(condition, names, values).expr(current):
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            reasons.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
        else:
            reasons.append((None, None, None))
        plan.append((op_type, op, table_name, key, current))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    # Phase 2: the writes. Conditions already held and no other request runs meanwhile.
    done = []
    try:
        for op_type, op, table_name, key, before in plan:
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            elif op_type == "Update":
                self.update_item(table_name, key, op["UpdateExpression"], names, values)
            else:
                continue
            done.append((table_name, key, before))
    except Exception as e:
        for table_name, key, before in reversed(done):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        failed = [(None, None, None)] * len(plan)
        failed[len(done)] = (type(e).__name__, str(e), None)
        raise TransactionCanceledException(failed) from e


DynamoDBBackend.transact_write_items = transact_write_items


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=False)


if __name__ == "__main__":
    main()
