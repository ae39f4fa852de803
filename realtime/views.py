"""HTTP views of the add-on: logout (blacklists the refresh token and closes live sockets)."""
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from .revocation import revoke_tokens


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
        return Response(status=status.HTTP_205_RESET_CONTENT)
