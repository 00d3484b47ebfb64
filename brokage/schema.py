"""The OpenAPI schema describes what the views really return.

Views declare their success bodies and the errors particular to them (`extend_schema`). What every
endpoint shares is added here, so no view can forget it: each error a shared layer may answer with,
with the body it has (`{"detail": ...}`, or a field's messages for invalid input):

- 401 and 403 where the view needs a signed-in caller (authentication, roles, scoping);
- 400 where there is input (a request body or query parameters), 415 where a body is parsed;
- 404 where the path or the body names something, and on paginated lists (a page past the end);
  a path that matches no route under /api/ is a JSON 404 too (`brokage.api.not_found`);
- 409 and 422 on every mutating method that takes an `Idempotency-Key` (still running, used for
  another request);
- 429 everywhere (rate limits and sign-in lockouts).

Paginated lists (`pagination_class` on the view, listed with `many=True`) are described by
drf-spectacular as pages: `{count, next, previous, results}` with `page` and `page_size`.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AllowAny

from brokage.idempotency import applies_to

ERROR_BODY = {
    "type": "object",
    "description": "`detail` says what went wrong; invalid input names each field with its messages.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SHARED_ERRORS = {
    "400": "Invalid input.",
    "401": "Not signed in, or the credentials are invalid, expired or revoked.",
    "403": "Not allowed for your role or for this customer.",
    "404": "Unknown, or not yours to see.",
    "409": "A request with this Idempotency-Key is still running (retry after `Retry-After`), or the "
    "state does not allow it.",
    "415": "The body is not JSON (or a form).",
    "422": "This Idempotency-Key was used with a different request.",
    "429": "Too many requests (see `Retry-After` and the `X-RateLimit-*` headers).",
}


class BrokageAutoSchema(AutoSchema):
    def _shared_error_codes(self) -> set[str]:
        codes = {"429"}
        method = self.method.upper()
        if any(not isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes |= {"401", "403"}
        has_query = any(parameter.get("in") == "query" for parameter in self._get_parameters())
        if method in BODY_METHODS:
            codes |= {"400", "415"}
        if has_query:
            codes.add("400")
        # A path naming something, a body naming something (a customer, an order), a page past the end.
        paged = method == "GET" and self._get_paginator() and self._is_list_view()
        if self.path_regex_has_parameters() or method in BODY_METHODS or paged:
            codes.add("404")
        if method in MUTATING_METHODS and applies_to(self.path):
            codes |= {"409", "422"}
        return codes

    def path_regex_has_parameters(self) -> bool:
        return "{" in self.path

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code in self._shared_error_codes():
            responses.setdefault(code, {"description": SHARED_ERRORS[code]})
        for code, response in responses.items():
            if code.startswith("4") and "content" not in response:
                response["content"] = {"application/json": {"schema": ERROR_BODY}}
                response["description"] = response.get("description") or SHARED_ERRORS.get(code, "")
        return dict(sorted(responses.items()))
