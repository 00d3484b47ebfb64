"""Each context's tables live in its own database, and nothing relates across them.

The customers context shares the `default` alias with Django's own auth, admin, sessions and
contenttypes, because the customers table *is* the user table.
"""

from django.conf import settings

# Django's own apps and the sign-in ones (simplejwt's token blacklist, the sign-in lockouts) relate to users.
DJANGO_APPS_ON_DEFAULT = {
    "auth",
    "admin",
    "sessions",
    "contenttypes",
    "messages",
    "staticfiles",
    "token_blacklist",
    "axes",
}


def _alias_by_app() -> dict[str, str]:
    mapping = {app: alias for alias, (app, _db, _env) in settings.RELATIONAL_CONTEXTS.items()}
    mapping.update(dict.fromkeys(DJANGO_APPS_ON_DEFAULT, "default"))
    return mapping


class ContextRouter:
    """Routes every model to its context's alias and refuses anything that crosses contexts."""

    def __init__(self) -> None:
        self.alias_by_app = _alias_by_app()

    def alias_for(self, app_label: str) -> str | None:
        return self.alias_by_app.get(app_label)

    def db_for_read(self, model, **hints):
        return self.alias_for(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return self.alias_for(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return self.alias_for(obj1._meta.app_label) == self.alias_for(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        alias = self.alias_for(app_label)
        if alias is None:
            # Apps without relational tables (the document contexts, the kernel) migrate nowhere.
            return False
        return db == alias
