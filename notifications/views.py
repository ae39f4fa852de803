"""The inbox and Web Push REST API (docs/notifications.md): JWT (revocation-aware) or session auth.

A user sees and changes only their own notifications: another user's id answers 404 like an id
that does not exist, and a request naming any such id changes nothing.
"""
from django.db import transaction
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from django_oda_realtime.auth import RevocationAwareJWTAuthentication

from . import inbox, webpush
from .models import PushPreference, PushSubscription
from .serializers import (PUSH_KINDS, MarkReadSerializer, NotificationSerializer, PreferencesSerializer,
                          SubscriptionSerializer, UnsubscribeSerializer)


class InboxPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["unreadCount"] = self.unread_count
        return response


class UserAPIView(APIView):
    authentication_classes = [RevocationAwareJWTAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class NotificationListView(UserAPIView):
    """``GET ?unread=true&page=N``: the user's notifications, newest first, with ``unreadCount``."""

    def get(self, request):
        unread_only = request.query_params.get("unread", "").lower() in ("1", "true", "yes")
        queryset = (inbox.unread if unread_only else inbox.visible)(request.user)
        paginator = InboxPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        paginator.unread_count = inbox.unread_count(request.user)
        return paginator.get_paginated_response(NotificationSerializer(page, many=True).data)


class MarkReadView(UserAPIView):
    """``POST {ids: [...]}``: mark those read (all or none; 404 names the ids that are not the user's)."""

    def post(self, request):
        serializer = MarkReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            count = inbox.mark_read(request.user, serializer.validated_data["ids"])
        except inbox.UnknownNotifications as e:
            return Response({"detail": str(e), "code": "not_found", "ids": [str(i) for i in e.ids]},
                            status=status.HTTP_404_NOT_FOUND)
        return Response({"unreadCount": count})


class MarkAllReadView(UserAPIView):
    """``POST``: mark every notification of the user read."""

    def post(self, request):
        marked = inbox.mark_all_read(request.user)
        return Response({"marked": marked, "unreadCount": 0})


class PushKeyView(APIView):
    """``GET``: the VAPID public key, the ``applicationServerKey`` of ``PushManager.subscribe``."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        key = webpush.public_key()
        if not key:
            return Response({"detail": "Web Push is not configured", "code": "push_unavailable"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"publicKey": key})


class PushSubscriptionView(UserAPIView):
    """``POST`` a ``PushSubscription.toJSON()`` (201 new, 200 known); ``DELETE {endpoint}`` (204, 404)."""

    def post(self, request):
        serializer = SubscriptionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sub, created = webpush.subscribe(request.user, data["endpoint"], data["keys"]["p256dh"], data["keys"]["auth"])
        return Response({"id": str(sub.pk), "endpoint": sub.endpoint},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def delete(self, request):
        serializer = UnsubscribeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deleted, _ = PushSubscription.objects.filter(user=request.user,
                                                     endpoint=serializer.validated_data["endpoint"]).delete()
        if not deleted:
            return Response({"detail": "No such subscription", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PushPreferencesView(UserAPIView):
    """``GET``: ``{kind: enabled}`` for every kind; ``PUT``/``PATCH {kind: bool, ...}``: change some."""

    def get(self, request):
        return Response(self._current(request.user))

    def put(self, request):
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            for kind, enabled in serializer.validated_data.items():
                PushPreference.objects.update_or_create(user=request.user, kind=kind, defaults={"enabled": enabled})
        return Response(self._current(request.user))

    patch = put

    @staticmethod
    def _current(user) -> dict:
        stored = dict(PushPreference.objects.filter(user=user).values_list("kind", "enabled"))
        return {kind: stored.get(kind, True) for kind in PUSH_KINDS}
