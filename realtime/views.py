"""HTTP views of the add-on: JWT login and logout (which closes the user's live sockets)."""
from django.contrib.auth.signals import user_logged_in, user_logged_out
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from .revocation import revoke_tokens
from .throttling import ThrottledAuthMixin, ThrottledRefreshMixin


class LoginView(ThrottledAuthMixin, TokenObtainPairView):
    """simplejwt's token pair view, which also sends Django's ``user_logged_in`` (it does not by
    itself), so a JWT login is a login for every receiver: activity notifications, last_login."""

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as e:
            raise InvalidToken(e.args[0]) from e
        user_logged_in.send(sender=type(serializer.user), request=request, user=serializer.user)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class RefreshView(ThrottledRefreshMixin, TokenRefreshView):
    """simplejwt's refresh view, throttled like the login (realtime/throttling.py)."""


class LogoutView(APIView):
    """``POST {refresh}`` with a Bearer access token: the refresh token is blacklisted, the
    user's access tokens issued so far stop counting, and their live sockets are closed (4005)."""

    permission_classes = [IsAuthenticated]

    def post(self, request):
        raw = request.data.get("refresh") if hasattr(request.data, "get") else None
        if raw:
            try:
                token = RefreshToken(raw)
            except TokenError:
                return Response({"detail": "Invalid refresh token", "code": "token_invalid"}, status=400)
            if str(token.get("user_id")) != str(request.user.pk):
                return Response({"detail": "Not your token", "code": "token_user_mismatch"}, status=400)
            token.blacklist()
        revoke_tokens(request.user, "logout")
        user_logged_out.send(sender=type(request.user), request=request, user=request.user)
        return Response(status=status.HTTP_205_RESET_CONTENT)
