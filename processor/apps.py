from brokage.apps import ContextConfig


class ProcessorConfig(ContextConfig):
    name = "processor"
