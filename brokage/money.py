"""Money and quantities: the one way a decimal is read from a request or an event, checked against
the column it goes into, and written back out as text.

Amounts are Decimal from end to end. A float is refused rather than converted (0.1 has no exact
binary form), and a value the column cannot hold exactly is refused rather than rounded: a client
that sends nine decimal places learns so, instead of trading a slightly different amount.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from brokage.errors import InvalidInput

# Longer text is refused before Decimal parses it: "1e999999999" is short, but a string of a
# million digits would cost real time to read for a number no column holds.
MAX_TEXT_LENGTH = 64
NOT_A_NUMBER = 'Must be a decimal number, sent as a string such as "12.5".'


def money_parse(value: object, *, field: str, max_digits: int, decimal_places: int, positive: bool = True) -> Decimal:
    """`value` as an exact Decimal of the column numeric(`max_digits`, `decimal_places`), at the
    column's scale; InvalidInput({field: [why]}) for a float, a non-number, a non-positive amount
    (when `positive`), too many whole digits or too many decimal places."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise InvalidInput({field: [NOT_A_NUMBER]})
    try:
        text = value.strip() if isinstance(value, str) else value
        number = Decimal(text) if len(str(text)) <= MAX_TEXT_LENGTH else None
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite():
        raise InvalidInput({field: [NOT_A_NUMBER]})
    if positive and number <= 0:
        raise InvalidInput({field: ["Must be greater than zero."]})
    limit = money_limit(max_digits=max_digits, decimal_places=decimal_places)
    if abs(number) >= limit:
        raise InvalidInput({field: [f"Must be less than {limit:,}."]})
    try:
        exact = number.quantize(Decimal(1).scaleb(-decimal_places))
    except InvalidOperation:
        exact = None
    if exact != number:
        raise InvalidInput({field: [f"Must have at most {decimal_places} decimal places."]})
    return exact


def money_limit(*, max_digits: int, decimal_places: int) -> Decimal:
    """The first value numeric(`max_digits`, `decimal_places`) cannot hold."""
    return Decimal(10) ** (max_digits - decimal_places)


def decimal_string(value: Decimal, *, trim: bool = False) -> str:
    """Fixed-point text, the form events and JSON carry: "0.00000001", never "1E-8".

    `trim` drops trailing zeros ("9800", not "9800.00000000"): balances are spelled so in their
    events, while an order's size and price keep their column's scale, as the API returns them.
    """
    if trim:
        return format(value.normalize(), "f") if value else "0"
    return format(value, "f")
