from rest_framework import serializers


class NotificationFilterSerializer(serializers.Serializer):
    read_status = serializers.ChoiceField(choices=["UNREAD", "READ"], required=False)
    customer_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Admins only: whose notifications."
    )


class NotificationOwnerSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Admins only: whose notifications."
    )


class ChannelsSerializer(serializers.Serializer):
    email = serializers.DictField()
    sms = serializers.DictField()
    push = serializers.DictField()
    websocket = serializers.DictField()


class NotificationSerializer(serializers.Serializer):
    """A notification, with how each channel delivered it."""

    # The schema's shape only: the views render the documents themselves.

    notification_id = serializers.CharField()
    customer_id = serializers.IntegerField()
    type = serializers.CharField()
    title = serializers.CharField()
    message = serializers.CharField()
    channels = ChannelsSerializer()
    read_status = serializers.ChoiceField(choices=["UNREAD", "READ"])
    read_at = serializers.DateTimeField(allow_null=True)
    priority = serializers.ChoiceField(choices=["HIGH", "NORMAL", "LOW"])
    category = serializers.CharField()
    related_entity = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class UnreadCountSerializer(serializers.Serializer):
    unread_count = serializers.IntegerField()


class WebSocketTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Open /ws/notifications?ticket=<this>; it works once.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid if unused.")
