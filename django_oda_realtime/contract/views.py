"""The contract over HTTP, for staff: ``asyncapi.json``, ``asyncapi.yaml``, ``realtime.d.ts``.

Staff only (``is_staff``), by a Bearer access token or an admin session: the document lists every
room, command and event of the project (docs/contract.md). The servers' host is the request's.
"""
from django.http import HttpResponse
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from . import asyncapi, typescript

CONTENT_TYPES = {"json": "application/json", "yaml": "application/yaml; charset=utf-8",
                 "ts": "application/typescript; charset=utf-8"}


class ContractView(APIView):
    # Named here, not taken from the project's DRF defaults, which may lack JWT.
    authentication_classes = [JWTAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]
    format: str = "json"

    def get(self, request):
        if self.format == "ts":
            text = typescript.declarations()
        else:
            doc = asyncapi.document(host=request.get_host(), secure=request.is_secure())
            text = asyncapi.render(doc, self.format)
        return HttpResponse(text, content_type=CONTENT_TYPES[self.format])
