"""Where the offline server's CPU went under load, and how each is spared, nothing a caller sees changed.

The server is one Python process: moto, its Step Functions interpreter and the offline AppSync share
one core's worth of GIL, so CPU it spends on bookkeeping is throughput the laptop loses (README,
"Benchmarks"). Sampled with py-spy over 200 concurrent bookings, these took most of it:

- `transact_write_items` (moto 5): a deep copy of every table the transaction names, for its
  rollback, at each transaction: linear in the table's size, a fifth of the server's CPU once a
  few hundred bookings are in. `per_item_transaction_rollback()` keeps a copy of the items the
  transaction names instead and puts those back, which is all a cancelled transaction may change.
- the interpreter's JSONPath expressions (`$.Payload.status`…), parsed again by jsonpath-ng's yacc
  parser at every evaluation: `cache_json_paths()` parses each path text once. A parsed path is not
  changed by finding or updating with it.

- moto's server routing (`DomainDispatcherApplication.get_backend_for_host`), which lists moto's
  package directory and stats each entry at every request to learn its service names:
  `cache_moto_modules()` lists it once. The directory does not change while the server runs.
- moto's dispatch (`BaseResponse.call_action`), which walks its response class with
  `inspect.getmembers` at every request to learn whether the action is one of its methods:
  `cache_action_names()` keeps each class's names. The offline additions to a response class
  (`offline.cognito_tokens`) are made before the server takes a request, and the cache is emptied
  when they are.

(The state machine interpreter's clients are made once per role and service: `offline.iam`; a
GraphQL request's parse and validation are kept per query text: `offline.appsync`.)
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import jsonpath_ng
import jsonpath_ng.ext
from moto import backends as moto_backends
from moto.core import responses as moto_responses
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.utils import json_path

_moto_transact = DynamoDBBackend.transact_write_items
_moto_list_modules = moto_backends.list_of_moto_modules
_moto_method_names = moto_responses.method_names_from_class


class _CopyKeepingTables:
    """`copy` as moto's DynamoDB models module sees it: a Table is not copied (its rollback is
    `per_item_transaction_rollback`'s), anything else is."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _key_of(table: Table, operation: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    attributes = operation.get("Key") or operation.get("Item") or {}
    try:
        hash_value = DynamoType(attributes[table.hash_key_attr])
        range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError):
        return None  # moto refuses the request itself
    return hash_value, range_value


def _stored(table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> Any:
    if range_value is None:
        return table.items.get(hash_value)
    return table.items.get(hash_value, {}).get(range_value)


def _put_back(table: Table, hash_value: DynamoType, range_value: DynamoType | None, item: Any) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    if item is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    saved = []
    for entry in transact_items:
        operation = next(iter(entry.values()), None) if isinstance(entry, dict) else None
        table = self.tables.get(str((operation or {}).get("TableName")))
        key = _key_of(table, operation) if table is not None and operation is not None else None
        if table is not None and key is not None:
            saved.append((table, *key, copy.deepcopy(_stored(table, *key))))
    try:
        _moto_transact(self, transact_items)
    except Exception:
        for table, hash_value, range_value, item in reversed(saved):
            _put_back(table, hash_value, range_value, item)
        raise


def per_item_transaction_rollback() -> None:
    """A cancelled TransactWriteItems puts back the items it names, not whole tables; safe to call again."""
    dynamodb_models.copy = _CopyKeepingTables()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]


@functools.lru_cache(maxsize=1024)
def _parse_ext(path: str) -> Any:
    return jsonpath_ng.ext.parse(path)


@functools.lru_cache(maxsize=1024)
def _parse(path: str) -> Any:
    return jsonpath_ng.parse(path)


def cache_json_paths() -> None:
    """Each JSONPath text of the interpreter parsed once; safe to call again."""
    json_path.parse = _parse_ext
    result_path.parse = _parse


@functools.lru_cache(maxsize=1)
def _moto_modules() -> tuple[str, ...]:
    return tuple(_moto_list_modules())


def cache_moto_modules() -> None:
    """moto's service modules listed once; safe to call again."""
    moto_backends.list_of_moto_modules = _moto_modules


@functools.lru_cache(maxsize=256)
def _action_names(clazz: type) -> frozenset[str]:
    return frozenset(_moto_method_names(clazz))


def cache_action_names() -> None:
    """Each moto response class's method names listed once; safe to call again."""
    moto_responses.method_names_from_class = _action_names  # type: ignore[assignment]


def forget_action_names() -> None:
    """After a method is added to a moto response class: list its names again."""
    _action_names.cache_clear()


def install() -> None:
    per_item_transaction_rollback()
    cache_json_paths()
    cache_moto_modules()
    cache_action_names()
