from brokage.apps import ContextConfig


class NotificationsConfig(ContextConfig):
    name = "notifications"
