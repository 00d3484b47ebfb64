"""Model fields every context may use.

`ExactDecimalField` is a DecimalField that stays exact on SQLite too. SQLite keeps NUMERIC values
as 64-bit floats (15 significant digits), so numeric(20, 8) money such as 123456789012.12345678
would come back rounded on the embedded and test profiles. This field stores the decimal as text
on SQLite and as `numeric(max_digits, decimal_places)` everywhere else; values are Decimals either
way. Comparisons in SQL on SQLite are textual, so do not order or filter by such a column there.
"""

from decimal import Decimal

from django.db import models


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
            return format(value, "f")
        return value

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.decimal_places), context=self.context)
