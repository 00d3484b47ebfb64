"""Model fields every context may use.

`ExactDecimalField` is a DecimalField that stays exact on SQLite too. SQLite keeps NUMERIC values
as 64-bit floats (15 significant digits), so numeric(24, 8) money such as 12345678.12345678
would come back rounded on the embedded and test profiles. This field stores the decimal as text
on SQLite and as `numeric(max_digits, decimal_places)` everywhere else; values are Decimals either
way.

On SQLite the text is fixed-width and zero-padded (`sqlite_decimal_text`), so comparing two such
columns, comparing one with a constant, and ORDER BY give the numeric answer: the CHECK constraints
on balances and the admin's sorting work unchanged. A negative value (the ledger's deltas) is
written as "-" and the complement of its magnitude, so negatives sort below every value ≥ 0 and
among themselves in numeric order too.

Arithmetic in SQL (`F("size") * 2`, `SUM`) converts the text to a float there (and reads a
negative value's complement as a number near -10**whole_digits), so do sums in Python on SQLite.
A value with more decimal places or whole digits than the column holds is refused (ValueError)
rather than rounded.
"""

from decimal import Context, Decimal, InvalidOperation

from django.db import models


def sqlite_decimal_text(value: Decimal, *, max_digits: int, decimal_places: int) -> str:
    """`value` as fixed-width text whose order is the numeric order:
    `Decimal("12.5")` in (24, 8) is `"0000000000000012.50000000"`. A negative value is "-" and
    `10**whole_digits + value` (`Decimal("-12.5")` is `"-9999999999999987.50000000"`): "-" sorts
    below every digit, so negatives come before every value ≥ 0 (a `>= 0` check refuses them), and
    the complement puts a larger magnitude first. `sqlite_decimal_value` reads either back."""
    whole_digits = max_digits - decimal_places
    if not value.is_finite() or (value and value.adjusted() >= whole_digits):
        raise ValueError(f"{value} does not fit in {whole_digits} whole digits")
    try:
        exact = value.quantize(Decimal(1).scaleb(-decimal_places), context=Context(prec=max_digits + 1))
    except InvalidOperation:
        raise ValueError(f"{value} does not fit in numeric({max_digits}, {decimal_places})") from None
    if exact != value:
        raise ValueError(f"{value} has more than {decimal_places} decimal places")
    width = max_digits + 1  # the digits and the point
    if exact < 0:
        complement = Context(prec=max_digits + 1).add(Decimal(10) ** whole_digits, exact)
        return "-" + format(complement, f"0{width}f")
    return format(abs(exact), f"0{width}f")  # abs: never "-0"


def sqlite_decimal_value(text: str) -> Decimal:
    """The Decimal `sqlite_decimal_text` wrote: a negative one is stored as its complement, and the
    width of its whole part says which power of ten it is the complement to."""
    if not text.startswith("-"):
        return Decimal(text)
    complement = Decimal(text[1:])
    whole_digits = len(text[1:].partition(".")[0])
    return Context(prec=len(text)).subtract(complement, Decimal(10) ** whole_digits)


class ExactDecimalField(models.DecimalField):
    def get_internal_type(self) -> str:
        # Not "DecimalField": that would route reads through SQLite's float converter.
        return "ExactDecimalField"

    def db_type(self, connection) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return connection.data_types["DecimalField"] % self.db_type_parameters(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if connection.vendor == "sqlite" and isinstance(value, Decimal):
            return sqlite_decimal_text(value, max_digits=self.max_digits, decimal_places=self.decimal_places)
        return value

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        if connection.vendor == "sqlite" and isinstance(value, str):
            return sqlite_decimal_value(value).quantize(Decimal(1).scaleb(-self.decimal_places), context=self.context)
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.decimal_places), context=self.context)


def sqlite_decimal_columns_rewrite(
    schema_editor, table: str, columns: list[str], *, max_digits: int, decimal_places: int
):
    """For a migration that turns DecimalFields into ExactDecimalFields: on SQLite, rewrite what the
    old columns held (floats, which the table rebuild turned into text such as "1000.0") as the
    fixed-width text the new field compares correctly. A float cannot give back digits it lost; the
    value is rounded (half even) to the column's scale, which is what it was meant to be. Elsewhere
    the column type does not change and there is nothing to do."""
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    quote = connection.ops.quote_name
    step = Decimal(1).scaleb(-decimal_places)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT rowid, {', '.join(map(quote, columns))} FROM {quote(table)}")  # noqa: S608
        rows = cursor.fetchall()
        assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
        for rowid, *values in rows:
            texts = [
                None
                if value is None
                else sqlite_decimal_text(
                    Decimal(str(value)).quantize(step), max_digits=max_digits, decimal_places=decimal_places
                )
                for value in values
            ]
            cursor.execute(f"UPDATE {quote(table)} SET {assignments} WHERE rowid = %s", [*texts, rowid])  # noqa: S608
