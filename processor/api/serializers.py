from rest_framework import serializers

from processor.models import SagaInstance


class SagaSerializer(serializers.ModelSerializer):
    order_id = serializers.UUIDField(source="aggregate_id")

    class Meta:
        model = SagaInstance
        fields = (
            "saga_id",
            "saga_type",
            "order_id",
            "current_state",
            "retry_count",
            "payload",
            "created_at",
            "updated_at",
        )
