"""Step Functions offline: moto's own ASL interpreter, with each definition parsed once.

moto (like the LocalStack interpreter it carries) parses a state machine's definition with ANTLR
at every execution start: about 0.25 s of CPU for the booking saga, more than the rest of a
confirmed booking's interpreter work. The parse tree depends only on the definition's text, so
`cache_definition_parses()` keeps the tree per text and builds fresh evaluation components from it
for each execution, exactly as moto does after parsing. Nothing an execution does changes.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

_moto_parse = AmazonStateLanguageParser.parse


@functools.lru_cache(maxsize=64)
def _tree(definition: str) -> Any:
    return _moto_parse(definition)[1]


def _parse_once(definition: str) -> tuple[Any, Any]:
    """moto's `AmazonStateLanguageParser.parse`: a syntax error still raises from moto's own parse."""
    tree = _tree(definition)
    return Preprocessor().visit(tree), tree


def cache_definition_parses() -> None:
    """Install the cache; safe to call again."""
    AmazonStateLanguageParser.parse = staticmethod(_parse_once)  # type: ignore[method-assign]
