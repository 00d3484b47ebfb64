from brokage.apps import ContextConfig


class AssetsConfig(ContextConfig):
    name = "assets"
