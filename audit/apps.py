from brokage.apps import ContextConfig


class AuditConfig(ContextConfig):
    name = "audit"
