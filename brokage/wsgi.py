"""The WSGI application (`WSGI_APPLICATION`), for a production WSGI server such as granian (the bench's).

Django hands a server its `HttpResponse` to iterate. granian sends a list's bytes in one call, but
iterates anything else chunk by chunk from Rust, back into Python for every chunk, each time taking
the GIL. So a whole (non-streaming) response is handed over as a one-item list, and closed here,
which fires `request_finished` (Django's end-of-request connection housekeeping) exactly as the
server's close would. Streaming and file responses are passed through to be iterated as before.
"""

import os

from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")
django_application = get_wsgi_application()


def application(environ, start_response):
    response = django_application(environ, start_response)
    if not isinstance(response, HttpResponse):  # StreamingHttpResponse, FileResponse
        return response
    try:
        return [response.content]
    finally:
        response.close()
