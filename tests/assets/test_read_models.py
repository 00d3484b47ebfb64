"""What assets knows of customers and brokers comes only from the customers context's events."""

from datetime import timedelta

from django.utils import timezone

from assets.models import BrokerAssignmentReplica, CustomerReplica
from assets.selectors import asset_invariant_violations
from tests.assets.conftest import assignment_event, customer_event, deliver_to_assets
from tests.assets.factories import AssetFactory


def replica(customer_id: int) -> CustomerReplica:
    return CustomerReplica.objects.using("assets").get(customer_id=customer_id)


def test_customer_created_and_updated_keep_the_replica():
    deliver_to_assets(customer_event(70001))
    deliver_to_assets(customer_event(70001, active=False, updated=True))

    assert replica(70001).active is False and replica(70001).role == "CUSTOMER"


def test_a_late_older_update_does_not_overwrite_a_newer_one():
    newer = customer_event(70002, active=False, updated=True)
    older = customer_event(70002, active=True, updated=True)
    older["occurred_at"] = (timezone.now() - timedelta(minutes=5)).isoformat()

    deliver_to_assets(newer)
    deliver_to_assets(older)

    assert replica(70002).active is False


def test_assignments_follow_assign_and_unassign_and_tolerate_duplicates():
    assigned = assignment_event(5, 70003)
    deliver_to_assets(assigned)
    deliver_to_assets(assigned)
    deliver_to_assets(assignment_event(5, 70003))  # a second assign event for the same pair

    assert BrokerAssignmentReplica.objects.using("assets").filter(broker_id=5, customer_id=70003).count() == 1

    deliver_to_assets(assignment_event(5, 70003, assigned=False))

    assert not BrokerAssignmentReplica.objects.using("assets").filter(broker_id=5, customer_id=70003).exists()


def test_the_invariant_check_reports_a_row_that_disagrees_with_its_reservations():
    sound = AssetFactory(size=100, usable_size=100)
    broken = AssetFactory(size=100, usable_size=60)  # 40 held back, but no reservation says so

    violations = asset_invariant_violations()

    assert [v["asset_id"] for v in violations] == [broken.id]
    assert violations[0]["active_reservations"] == 0
    assert sound.id not in [v["asset_id"] for v in violations]
