"""HTTP through Django, WebSockets through Channels (`/ws/notifications`)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from brokage.websocket import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns())),
    }
)
