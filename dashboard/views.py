"""The live dashboard: a page in the admin that is itself a realtime client.

The page asks ``token/`` for an access token of the logged-in staff user (POST with
the CSRF token, never cached), opens ``/ws/`` with it, subscribes to the topics in
``TOPICS`` and draws what arrives (``static/dashboard/live.js``). ``stats/`` gives
the serving process's numbers, labelled with it, and the open connections of all processes; ``announce/`` sends a notice to everyone
through ``notifications.services.announce``.
"""
from functools import wraps
import socket

from django.contrib import admin, messages
from django.db.models import F
from django.http import HttpRequest, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from inventory import events as inventory_events
from inventory.models import InventoryLevel
from inventory.rooms import VIEW as VIEW_INVENTORY
from notifications import services as notification_services
from django_oda_realtime.ops.metrics_view import snapshot
from django_oda_realtime.accounts.receivers import DASHBOARD_TOKENS_MINTED
from django_oda_realtime.accounts.tokens import PreciseAccessToken
from shopify_sync import events as shopify_events
from shopify_sync.models import SyncJob
from shopify_sync.rooms import VIEW as VIEW_SYNC

from .cluster import open_connections
from .forms import AnnouncementForm

# The topics the page subscribes to (rooms it may not join are listed as refused).
TOPICS = ["inventory", "orders", "shopify", "notifications", "staff"]
ANNOUNCE_PERMISSION = "notifications.add_announcement"
HISTORY_SECONDS = 300
INITIAL_ROWS = 20


def staff_json(view):
    """A JSON endpoint for active staff sessions: 403 JSON otherwise (never a login redirect)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return JsonResponse({"detail": "Staff only"}, status=403)
        return view(request, *args, **kwargs)

    return never_cache(csrf_protect(wrapped))


def running_jobs(user) -> list[dict]:
    """The Shopify sync jobs not finished yet, as ``shopify:syncStatus`` payloads."""
    if not user.has_perm(VIEW_SYNC):
        return []
    jobs = SyncJob.objects.filter(status__in=[SyncJob.Status.PENDING, SyncJob.Status.RUNNING])
    return [shopify_events.status_payload(job) for job in jobs.order_by("-created_at")[:INITIAL_ROWS]]


def low_stock(user) -> list[dict]:
    """Levels at or below their threshold now, as ``inventory:lowStock`` payloads."""
    if not user.has_perm(VIEW_INVENTORY):
        return []
    levels = (
        InventoryLevel.objects.alias(sellable=F("available") - F("reserved"))
        .filter(sellable__lte=F("low_stock_threshold"))
        .select_related("item__variant__product")
        .order_by("-updated_at")[:INITIAL_ROWS]
    )
    return [inventory_events.low_stock_payload(level) for level in levels]


def live(request: HttpRequest) -> TemplateResponse:
    can_announce = request.user.has_perm(ANNOUNCE_PERMISSION)
    config = {
        "wsPath": "/ws/",
        "tokenUrl": reverse("dashboard:token"),
        "statsUrl": reverse("dashboard:stats"),
        "announceUrl": reverse("dashboard:announce") if can_announce else None,
        "topics": TOPICS,
        "historySeconds": HISTORY_SECONDS,
        "jobs": running_jobs(request.user),
        "lowStock": low_stock(request.user),
    }
    context = {
        **admin.site.each_context(request),
        "title": "Live dashboard",
        "is_nav_sidebar_enabled": False,  # the page needs the width
        "config": config,
        "form": AnnouncementForm() if can_announce else None,
    }
    return TemplateResponse(request, "dashboard/live.html", context)


@require_POST
def announce(request: HttpRequest):
    """Send a maintenance notice or a system event to every connected client."""
    if not request.user.has_perm(ANNOUNCE_PERMISSION):
        return HttpResponseForbidden("You may not send announcements.")
    wants_json = "application/json" in request.headers.get("Accept", "")
    form = AnnouncementForm(request.POST)
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"errors": form.errors}, status=400)
        messages.error(request, "The announcement was not sent: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()))
        return redirect("dashboard:live")
    data = form.cleaned_data
    announcement = notification_services.announce(
        data["message"], kind=data["kind"], title=data["title"], level=data["level"] or None, user=request.user
    )
    if wants_json:
        return JsonResponse({"announcementId": str(announcement.pk), "kind": announcement.kind,
                             "level": announcement.level})
    messages.success(request, f"Sent the {announcement.get_kind_display().lower()} announcement to everyone.")
    return redirect("dashboard:live")


@require_POST
@staff_json
def token(request: HttpRequest) -> JsonResponse:
    """A fresh access token for the logged-in staff user (the page's socket and its refreshes).

    The session remembers that it minted one: logging out of it revokes the user's tokens and so
    closes these sockets (django_oda_realtime/accounts/receivers.py ``logged_out``). The token's ``iat`` is precise
    (django_oda_realtime/accounts/tokens.py): after logging in again, the new page's token works at once."""
    access = PreciseAccessToken.for_user(request.user)
    if not request.session.get(DASHBOARD_TOKENS_MINTED):
        request.session[DASHBOARD_TOKENS_MINTED] = True  # its logout must end them (django_oda_realtime/accounts/receivers.py)
    return JsonResponse({"token": str(access), "expiresAt": access["exp"]})


@require_GET
@staff_json
def stats(request: HttpRequest) -> JsonResponse:
    """This server process's live numbers (connections, subscriptions, events), labelled with the
    process, and ``connectionsAllProcesses``: the open sockets of every process (``cluster.py``)."""
    numbers = snapshot()
    numbers["process"] = f"{socket.gethostname()}:{numbers['pid']}"
    numbers["connectionsAllProcesses"] = open_connections()
    return JsonResponse(numbers)
