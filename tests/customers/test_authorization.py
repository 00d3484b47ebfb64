"""Who may do what with the customers API: the authorization matrix.

The subject of every request is `customer`; `broker` is assigned to it, `lone_broker` is not.
Not yours to see is 404, yours to see but not to change is 403, not signed in is 401.
"""

import pytest

from tests.customers.conftest import client_for
from tests.customers.factories import BrokerFactory

ACTORS = ["admin", "assigned_broker", "lone_broker", "self", "other_customer", "anonymous"]


@pytest.fixture
def actors(admin, assigned, other_customer):
    broker, customer = assigned
    return {
        "admin": admin,
        "assigned_broker": broker,
        "lone_broker": BrokerFactory(),
        "self": customer,
        "other_customer": other_customer,
        "anonymous": None,
    }


def _request(actors, actor, method, path, body=None):
    return getattr(client_for(actors[actor]), method)(path, body, format="json")


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("admin", 200),
        ("assigned_broker", 200),
        ("lone_broker", 404),
        ("self", 200),
        ("other_customer", 404),
        ("anonymous", 401),
    ],
)
def test_get_customer(actors, actor, expected):
    customer = actors["self"]
    response = _request(actors, actor, "get", f"/api/customers/{customer.pk}")
    assert response.status_code == expected, response.content
    if expected == 200:
        assert response.json()["username"] == customer.username


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("admin", 200),
        ("assigned_broker", 403),
        ("lone_broker", 404),
        ("self", 200),
        ("other_customer", 404),
        ("anonymous", 401),
    ],
)
def test_patch_contact_details(actors, actor, expected):
    customer = actors["self"]
    response = _request(actors, actor, "patch", f"/api/customers/{customer.pk}/", {"phone": "+90 555 000 11 22"})
    assert response.status_code == expected, response.content
    customer.refresh_from_db()
    assert (customer.phone == "+90 555 000 11 22") == (expected == 200)


@pytest.mark.parametrize(("actor", "expected"), [("admin", 200), ("self", 403), ("assigned_broker", 403)])
def test_only_admins_change_tier_role_and_status(actors, actor, expected):
    customer = actors["self"]
    for body in ({"tier": "VIP"}, {"role": "CUSTOMER"}, {"active": False}, {"email": "new@example.com", "tier": "VIP"}):
        response = _request(actors, actor, "patch", f"/api/customers/{customer.pk}", body)
        assert response.status_code == expected, (body, response.content)
    customer.refresh_from_db()
    assert (customer.tier_id == "VIP") == (expected == 200)


@pytest.mark.parametrize("actor", ACTORS)
def test_list_is_scoped(actors, actor):
    response = _request(actors, actor, "get", "/api/customers")
    if actor == "anonymous":
        assert response.status_code == 401
        return
    assert response.status_code == 200
    body = response.json()
    usernames = {row["username"] for row in body["results"]}
    expected = {
        "admin": {user.username for user in actors.values() if user is not None},
        "assigned_broker": {actors["self"].username},
        "lone_broker": set(),
        "self": {actors["self"].username},
        "other_customer": {actors["other_customer"].username},
    }[actor]
    assert usernames == expected
    assert body["count"] == len(expected)


@pytest.mark.parametrize("actor", ACTORS)
def test_me(actors, actor):
    response = _request(actors, actor, "get", "/api/customers/me")
    if actor == "anonymous":
        assert response.status_code == 401
    else:
        assert response.status_code == 200
        assert response.json()["id"] == actors[actor].pk


@pytest.mark.parametrize(
    ("actor", "expected"),
    [("admin", 201), ("assigned_broker", 403), ("self", 403), ("anonymous", 401)],
)
def test_create_customer(actors, actor, expected):
    body = {"username": "newbie", "password": "long-enough-pw", "email": "newbie@example.com"}
    response = _request(actors, actor, "post", "/api/customers", body)
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(
    ("actor", "assign", "unassign"),
    [("admin", 201, 204), ("assigned_broker", 403, 403), ("self", 403, 403), ("anonymous", 401, 401)],
)
def test_assign_and_unassign(actors, actor, assign, unassign):
    broker, customer = actors["lone_broker"], actors["other_customer"]
    path = f"/api/brokers/{broker.pk}/customers/{customer.pk}"
    assert _request(actors, actor, "post", path).status_code == assign
    if assign != 201:
        # Someone allowed made the assignment; still only an admin may remove it.
        assert _request(actors, "admin", "post", path).status_code == 201
    assert _request(actors, actor, "delete", path + "/").status_code == unassign


@pytest.mark.parametrize(
    ("actor", "expected"),
    [("admin", 200), ("self", 200), ("assigned_broker", 404), ("other_customer", 404), ("anonymous", 401)],
)
def test_notification_preferences(actors, actor, expected):
    customer = actors["self"]
    path = f"/api/customers/{customer.pk}/notification-preferences"
    assert _request(actors, actor, "get", path).status_code == expected
    body = {"email_enabled": False, "sms_enabled": True, "push_enabled": True, "preferences": {"lang": "tr"}}
    assert _request(actors, actor, "put", path, body).status_code == expected
    preferences = customer.notification_preferences
    preferences.refresh_from_db()
    assert (preferences.sms_enabled, preferences.preferences == {"lang": "tr"}) == (
        (True, True) if expected == 200 else (False, False)
    )


@pytest.mark.parametrize(("actor", "expected"), [("self", 200), ("lone_broker", 200), ("anonymous", 401)])
def test_tiers(actors, actor, expected):
    response = _request(actors, actor, "get", "/api/tiers/")
    assert response.status_code == expected
    if expected == 200:
        assert [(t["tier_code"], t["rate_limit"], t["monthly_fee"]) for t in response.json()] == [
            ("VIP", 1000, "99.00"),
            ("PREMIUM", 500, "29.00"),
            ("STANDARD", 100, "0.00"),
        ]
