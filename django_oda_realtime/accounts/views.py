"""HTTP views of the add-on: JWT login, refresh and logout (which closes the user's live sockets).

The tokens they mint carry an ``iat`` precise to the microsecond (django_oda_realtime/accounts/tokens.py), so a
login right after a logout works while every token from before it stays refused.
"""
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from ..auth import RevocationAwareJWTAuthentication
from .receivers import REVOKED_MARK
from .revocation import is_revoked, revoke_tokens
from .throttling import ThrottledAuthMixin, ThrottledRefreshMixin
from .tokens import PreciseRefreshToken


class LoginSerializer(TokenObtainPairSerializer):
    token_class = PreciseRefreshToken


class RefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, which checks only its blacklist, plus the user: deleted, inactive, or
    with tokens revoked since this refresh token was issued (logout, password change) → 401."""

    token_class = PreciseRefreshToken

    def validate(self, attrs):
        from ..models import TokenRevocation

        refresh = self.token_class(attrs["refresh"])  # its current_time is the new tokens' iat
        User = get_user_model()
        user_id = refresh.payload.get(api_settings.USER_ID_CLAIM)
        user = User.objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first() if user_id is not None else None
        if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account")
        not_before = TokenRevocation.objects.filter(user_id=user.pk).values_list("not_before", flat=True).first()
        if is_revoked(refresh.payload.get("iat"), not_before):
            raise AuthenticationFailed("The session was revoked; log in again", "token_revoked")
        return super().validate(attrs)


class LoginView(ThrottledAuthMixin, TokenObtainPairView):
    """simplejwt's token pair view, which also sends Django's ``user_logged_in`` (it does not by
    itself), so a JWT login is a login for every receiver: activity notifications, last_login."""

    serializer_class = LoginSerializer

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as e:
            raise InvalidToken(e.args[0]) from e
        user_logged_in.send(sender=type(serializer.user), request=request, user=serializer.user)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class RefreshView(ThrottledRefreshMixin, TokenRefreshView):
    """simplejwt's refresh view with revocation checked (``RefreshSerializer``), throttled like the
    login (django_oda_realtime/accounts/throttling.py)."""

    serializer_class = RefreshSerializer


class LogoutView(APIView):
    """``POST {refresh}``: ends the user's session everywhere.

    The user is the one of the Bearer access token (or Django session), else the one of a
    valid refresh token in the body. Whatever refresh token is sent, every token of the user
    issued until now (access and refresh, the one of this request too) stops counting and every
    live socket of the user closes (4005, ``logout``). A refresh token of the user is also
    blacklisted. A refresh token that is invalid, expired, already blacklisted or another user's
    does not prevent that: the answer is then 200 with ``refresh`` saying why it was not used
    (``token_invalid``, ``token_user_mismatch``); 205 when all went well.
    """

    # A revoked access token is refused here too: else a stolen one could keep logging its user out.
    authentication_classes = [RevocationAwareJWTAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]

    def post(self, request):
        raw = request.data.get("refresh") if hasattr(request.data, "get") else None
        token, problem = None, None
        if raw:
            try:
                token = PreciseRefreshToken(raw)
            except TokenError:
                problem = "token_invalid"
        user = request.user if request.user.is_authenticated else None
        if user is None:
            if token is None:
                raise NotAuthenticated()
            user = get_user_model().objects.filter(
                **{api_settings.USER_ID_FIELD: token.payload.get(api_settings.USER_ID_CLAIM)}).first()
            if user is None:
                raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
        if token is not None:
            if str(token.payload.get(api_settings.USER_ID_CLAIM)) != str(getattr(user, api_settings.USER_ID_FIELD)):
                problem = "token_user_mismatch"
            elif apps.is_installed("rest_framework_simplejwt.token_blacklist"):
                token.blacklist()  # without the app, the revocation below refuses it too (check realtime.W020)
        revoke_tokens(user, "logout")
        setattr(request, REVOKED_MARK, True)  # for receivers.logged_out: revoked once
        user_logged_out.send(sender=type(user), request=request, user=user)
        if problem is not None:
            return Response({"detail": "Logged out; the refresh token was not used", "refresh": problem},
                            status=status.HTTP_200_OK)
        return Response(status=status.HTTP_205_RESET_CONTENT)
