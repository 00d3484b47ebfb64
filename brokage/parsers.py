"""JSON in which every number with a fraction becomes a Decimal, so money is never a float.

The API's default JSON parser (`REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`): `"amount": 0.1` stays
exactly 0.1, NaN and Infinity are refused, and absurdly nested input is a 400, not a 500.
"""

import codecs
import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


class DecimalJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_float=Decimal, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested input
            raise ParseError(f"JSON parse error - {exc}")
