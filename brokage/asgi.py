"""HTTP through Django, WebSockets through Channels (`/ws/notifications`).

A WebSocket handshake must carry an `Origin` whose host is in ALLOWED_HOSTS (Channels' validator):
a browser sends the session cookie with a handshake started by any page, so without this check
another site could open a signed-in customer's notification stream. Other clients send an Origin
of the service's own host.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from brokage.deferred import DeferredResponseMiddleware  # noqa: E402
from brokage.websocket import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Outermost: answers that wait (`Prefer: wait`) wait here, on the event loop (brokage/deferred.py).
        "http": DeferredResponseMiddleware(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns()))),
    }
)
