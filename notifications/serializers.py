"""REST shapes of the inbox and of Web Push subscriptions and preferences (docs/notifications.md)."""
from rest_framework import serializers

from . import events, inbox, webpush
from .models import Notification

PUSH_KINDS = (events.USER_ACTIVITY, events.SYSTEM_EVENT, events.SYSTEM_MAINTENANCE, events.SECURITY_ALERT)


class NotificationSerializer(serializers.ModelSerializer):
    id = serializers.SerializerMethodField()
    type = serializers.CharField(source="kind")
    read = serializers.SerializerMethodField()
    broadcast = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "type", "data", "broadcast", "read", "created_at"]

    def get_id(self, obj) -> str:
        return str(obj.pk)  # ids are strings on the wire, as in the events (docs/protocol.md)

    def get_read(self, obj) -> bool:
        return obj.read_at is not None if obj.user_id is not None else bool(obj.broadcast_read)


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                min_length=1, max_length=inbox.MAX_IDS)


class KeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200, trim_whitespace=False)
    auth = serializers.CharField(max_length=200, trim_whitespace=False)


class SubscriptionSerializer(serializers.Serializer):
    """``PushSubscription.toJSON()`` as the browser gives it (``expirationTime`` accepted, unused)."""

    endpoint = serializers.CharField(max_length=webpush.MAX_ENDPOINT_LENGTH + 1, trim_whitespace=False)
    keys = KeysSerializer()
    expirationTime = serializers.IntegerField(required=False, allow_null=True)

    def validate(self, attrs):
        try:
            attrs["endpoint"], attrs["keys"]["p256dh"], attrs["keys"]["auth"] = webpush.validate_subscription(
                attrs["endpoint"], attrs["keys"]["p256dh"], attrs["keys"]["auth"])
        except webpush.InvalidSubscription as e:
            field, _, sub = e.field.partition(".")
            raise serializers.ValidationError({field: {sub: [str(e)]} if sub else [str(e)]}) from e
        return attrs


class UnsubscribeSerializer(serializers.Serializer):
    endpoint = serializers.CharField(max_length=webpush.MAX_ENDPOINT_LENGTH, trim_whitespace=False)


class PreferencesSerializer(serializers.Serializer):
    """``{kind: enabled}`` for any of the notification kinds."""

    def to_internal_value(self, data):
        if not isinstance(data, dict) or not data:
            raise serializers.ValidationError({"non_field_errors": ["Send an object of kind: true|false"]})
        errors = {k: [f"Unknown kind; one of {', '.join(PUSH_KINDS)}"] for k in data if k not in PUSH_KINDS}
        errors.update({k: ["Must be true or false"] for k, v in data.items()
                       if k in PUSH_KINDS and not isinstance(v, bool)})
        if errors:
            raise serializers.ValidationError(errors)
        return dict(data)
