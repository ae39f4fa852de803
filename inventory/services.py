"""Every write to stock goes through here: set, adjust, reserve, release, fulfil, expire.

Concurrency (issue #3): each service runs in one transaction and locks the levels
it changes with ``SELECT ... FOR UPDATE`` in primary-key order (no deadlock when
several levels are locked, as in Saleor's stock reservation), then checks and
writes the numbers. The database's check constraints (``0 <= reserved <= available``)
are the last line whatever the code path.

Exactly one ``level_changed`` per change: services write with ``QuerySet.update()``
(which sends no ``post_save``) and send the signal themselves; a plain ``save()``
elsewhere (admin, shell) reaches ``record_plain_save`` through ``post_save``.
Events are published by ``receivers`` after commit; a failure writes nothing.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from domain_shared.users import acting_user
from shopify_sync.mapping import on_hand

from . import signals
from .errors import Conflict, InsufficientStock, LocationRequired, NotFound
from .models import InventoryItem, InventoryLevel, Location, Reservation, StockMovement

Kind = StockMovement.Kind
DEFAULT_RESERVATION_TTL = 15 * 60


@dataclass(frozen=True)
class Previous:
    available: int
    reserved: int
    threshold: int


def reservation_ttl() -> timedelta:
    return timedelta(seconds=getattr(settings, "INVENTORY_RESERVATION_TTL", DEFAULT_RESERVATION_TTL))


# -- reading and locking ---------------------------------------------------------------


def resolve_location(item_id: int, location_id: int | None) -> int:
    """The location of an operation: the one given, or the item's only location."""
    if not InventoryItem.objects.filter(pk=item_id).exists():
        raise NotFound(f"Inventory item {item_id} does not exist")
    if location_id is not None:
        if not Location.objects.filter(pk=location_id).exists():
            raise NotFound(f"Location {location_id} does not exist")
        return location_id
    locations = list(InventoryLevel.objects.filter(item_id=item_id).values_list("location_id", flat=True)[:2])
    if len(locations) != 1:
        raise LocationRequired()
    return locations[0]


def _locked(pairs) -> dict[tuple[int, int], InventoryLevel]:
    """Lock the levels of ``(item_id, location_id)`` pairs in pk order; NotFound if one is missing."""
    wanted = set(pairs)
    query = Q()
    for item_id, location_id in wanted:
        query |= Q(item_id=item_id, location_id=location_id)
    levels = (
        InventoryLevel.objects.select_for_update(of=("self",))
        .select_related("item__variant__product", "location")
        .filter(query)
        .order_by("pk")
    )
    found = {(level.item_id, level.location_id): level for level in levels}
    for item_id, location_id in sorted(wanted - set(found)):
        raise NotFound(f"Inventory item {item_id} is not stocked at location {location_id}")
    return found


def _lock_one(item_id: int, location_id: int, *, create: bool = False) -> InventoryLevel:
    """Lock one level; with ``create``, make it (at 0) first if the item is not stocked there yet."""
    try:
        return _locked([(item_id, location_id)])[(item_id, location_id)]
    except NotFound:
        if not create:
            raise
    if not InventoryItem.objects.filter(pk=item_id).exists():
        raise NotFound(f"Inventory item {item_id} does not exist")
    if not Location.objects.filter(pk=location_id).exists():
        raise NotFound(f"Location {location_id} does not exist")
    # bulk_create sends no post_save: the level appears at 0 and the change that
    # follows is its one event. ON CONFLICT DO NOTHING when another thread won.
    InventoryLevel.objects.bulk_create([InventoryLevel(item_id=item_id, location_id=location_id)],
                                       ignore_conflicts=True)
    return _locked([(item_id, location_id)])[(item_id, location_id)]


# -- the one writer of a locked level ----------------------------------------------------


def _apply(level: InventoryLevel, kind: str, *, available_delta: int = 0, reserved_delta: int = 0,
           reason: str = "", user=None, reservation: Reservation | None = None) -> InventoryLevel:
    """Change a locked level by deltas, record the movement, send ``level_changed``."""
    available = level.available + available_delta
    reserved = level.reserved + reserved_delta
    if available < 0 or reserved < 0 or reserved > available:
        raise InsufficientStock(
            f"Not enough stock: {level.available - level.reserved} sellable, "
            f"{level.available} on hand, {level.reserved} reserved"
        )
    previous = Previous(level.available, level.reserved, level.low_stock_threshold)
    now = timezone.now()
    InventoryLevel.objects.filter(pk=level.pk).update(available=available, reserved=reserved, updated_at=now)
    level.available, level.reserved, level.updated_at = available, reserved, now
    StockMovement.objects.create(
        level=level, kind=kind, available_delta=available_delta, reserved_delta=reserved_delta,
        available_after=available, reserved_after=reserved, reason=reason, reservation=reservation,
        user=acting_user(user),
    )
    _send_level_changed(level, kind, previous, reason, user)
    return level


def _send_level_changed(level, kind, previous: Previous, reason, user) -> None:
    signals.level_changed.send(
        sender=InventoryLevel, level=level, kind=kind, previous_available=previous.available,
        previous_reserved=previous.reserved, previous_threshold=previous.threshold, reason=reason,
        user=acting_user(user),
    )


# -- quantities ----------------------------------------------------------------------------


def set_quantity(item_id: int, location_id: int, quantity: int, *, reason: str, user=None,
                 expected: int | None = None) -> InventoryLevel:
    """Set the quantity on hand (a count); ``expected`` refuses a stale write as a conflict."""
    if quantity < 0:
        raise InsufficientStock("A quantity cannot be negative")
    with transaction.atomic():
        level = _lock_one(item_id, location_id, create=expected is None)
        if expected is not None and level.available != expected:
            raise Conflict(f"Expected quantity {expected} but it is {level.available}")
        if quantity < level.reserved:
            raise InsufficientStock(f"{level.reserved} units are reserved: the quantity cannot be below that")
        return _apply(level, Kind.SET, available_delta=quantity - level.available, reason=reason, user=user)


def adjust(item_id: int, location_id: int, delta: int, *, reason: str, user=None) -> InventoryLevel:
    """Add ``delta`` (negative for a sale or loss) to the quantity on hand."""
    with transaction.atomic():
        level = _lock_one(item_id, location_id, create=delta > 0)
        return _apply(level, Kind.ADJUST, available_delta=delta, reason=reason, user=user)


def set_threshold(item_id: int, location_id: int, threshold: int, *, user=None) -> InventoryLevel:
    """Change a level's low-stock threshold (may itself make the level low)."""
    with transaction.atomic():
        level = _lock_one(item_id, location_id)
        previous = Previous(level.available, level.reserved, level.low_stock_threshold)
        InventoryLevel.objects.filter(pk=level.pk).update(low_stock_threshold=threshold, updated_at=timezone.now())
        level.low_stock_threshold = threshold
        _send_level_changed(level, Kind.SET, previous, "Low-stock threshold changed", user)
        return level


# -- reservations ---------------------------------------------------------------------------


def _existing_request(user, request_id: str | None) -> Reservation | None:
    if request_id is None:
        return None
    return Reservation.objects.filter(created_by=acting_user(user), request_id=request_id).first()


def _same_request(existing: Reservation, item_id, location_id, quantity) -> Reservation:
    if (existing.item_id, existing.location_id, existing.quantity) != (item_id, location_id, quantity):
        raise Conflict("This requestId was already used for a different reservation", code="request_id_reused")
    existing.duplicate = True
    return existing


def reserve(item_id: int, location_id: int, quantity: int, *, reason: str, user=None, reference: str = "",
            request_id: str | None = None, ttl: timedelta | None = None) -> Reservation:
    """Hold ``quantity`` sellable units; a retry with the same ``request_id`` returns the first reservation."""
    if quantity <= 0:
        raise InsufficientStock("A reservation needs a positive quantity")
    with transaction.atomic():
        existing = _existing_request(user, request_id)
        if existing is not None:
            return _same_request(existing, item_id, location_id, quantity)
        level = _lock_one(item_id, location_id)
        if level.available - level.reserved < quantity:
            _expire_overdue_at(level)  # overdue reservations never block a new one
        if level.available - level.reserved < quantity:
            raise InsufficientStock(
                f"Cannot reserve {quantity}: only {level.available - level.reserved} sellable"
            )
        new = Reservation(
            item=level.item, location=level.location, quantity=quantity, reason=reason, reference=reference,
            request_id=request_id, created_by=acting_user(user), expires_at=timezone.now() + (ttl or reservation_ttl()),
        )
        if request_id is None:
            new.save()
        else:
            try:
                with transaction.atomic():  # a savepoint: the unique request id decides a race
                    new.save()
            except IntegrityError:
                existing = _existing_request(user, request_id)
                if existing is None:
                    raise
                return _same_request(existing, item_id, location_id, quantity)
        reservation = new
        _apply(level, Kind.RESERVE, reserved_delta=quantity, reason=reason, user=user, reservation=reservation)
        reservation.duplicate = False
        signals.reservation_changed.send(sender=Reservation, reservation=reservation, action="created", user=user)
        return reservation


def _close(reservation: Reservation, level: InventoryLevel, status: str, kind: str, *, reason: str,
           user=None, available_delta: int = 0) -> Reservation:
    """End an active reservation (levels already locked): give back or consume its units."""
    reservation.status = status
    reservation.closed_at = timezone.now()
    reservation.save(update_fields=["status", "closed_at"])
    _apply(level, kind, available_delta=available_delta, reserved_delta=-reservation.quantity,
           reason=reason or reservation.reason, user=user, reservation=reservation)
    signals.reservation_changed.send(sender=Reservation, reservation=reservation, action=status, user=user)
    return reservation


def _finish(reservation_id: int, status: str, kind: str, *, reason: str, user, consume: bool) -> Reservation:
    with transaction.atomic():
        try:
            found = Reservation.objects.only("item_id", "location_id").get(pk=reservation_id)
        except Reservation.DoesNotExist:
            raise NotFound(f"Reservation {reservation_id} does not exist") from None
        level = _lock_one(found.item_id, found.location_id)  # levels first, then reservations
        reservation = Reservation.objects.select_for_update().select_related("item__variant").get(pk=reservation_id)
        if reservation.status != Reservation.Status.ACTIVE:
            raise Conflict(f"Reservation {reservation_id} is {reservation.status}", code="reservation_closed")
        return _close(reservation, level, status, kind, reason=reason, user=user,
                      available_delta=-reservation.quantity if consume else 0)


def release(reservation_id: int, *, reason: str = "", user=None) -> Reservation:
    """Give a reservation's units back to sellable stock."""
    return _finish(reservation_id, Reservation.Status.RELEASED, Kind.RELEASE, reason=reason, user=user, consume=False)


def fulfill(reservation_id: int, *, reason: str = "", user=None) -> Reservation:
    """The reserved units leave the shelf (an order shipped): on hand and reserved both drop."""
    return _finish(reservation_id, Reservation.Status.FULFILLED, Kind.FULFILL, reason=reason, user=user, consume=True)


def _expire_overdue_at(level: InventoryLevel, now=None) -> int:
    """Expire the overdue reservations of a locked level, so they no longer count as reserved."""
    overdue = (
        Reservation.objects.select_for_update()
        .select_related("item__variant")
        .filter(item_id=level.item_id, location_id=level.location_id, status=Reservation.Status.ACTIVE,
                expires_at__lte=now or timezone.now())
        .order_by("pk")
    )
    count = 0
    for reservation in overdue:
        _close(reservation, level, Reservation.Status.EXPIRED, Kind.EXPIRE, reason="Reservation expired")
        count += 1
    return count


def expire_reservations(*, now=None, batch: int = 200) -> int:
    """Expire every active reservation past its expiry (one transaction per level); returns how many."""
    now = now or timezone.now()
    pairs = (
        Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now)
        .values_list("item_id", "location_id")
        .distinct()
    )
    total = 0
    for item_id, location_id in sorted(set(pairs))[:batch]:
        with transaction.atomic():
            try:
                level = _lock_one(item_id, location_id)
            except NotFound:
                continue
            total += _expire_overdue_at(level, now)
    return total


# -- plain saves ------------------------------------------------------------------------------


def record_plain_save(level: InventoryLevel, previous: Previous | None, user=None, reason: str = "") -> None:
    """A level saved outside the services (admin, shell): ledger it and send its one ``level_changed``."""
    previous = previous or Previous(0, 0, level.low_stock_threshold)
    if (previous.available, previous.reserved, previous.threshold) == (
        level.available, level.reserved, level.low_stock_threshold
    ):
        return  # nothing changed: no event
    reason = reason or "Saved"
    if (level.available, level.reserved) != (previous.available, previous.reserved):
        StockMovement.objects.create(
            level=level, kind=Kind.SAVE, available_delta=level.available - previous.available,
            reserved_delta=level.reserved - previous.reserved, available_after=level.available,
            reserved_after=level.reserved, reason=reason, user=acting_user(user),
        )
    _send_level_changed(level, Kind.SAVE, previous, reason, user)


# -- Shopify ----------------------------------------------------------------------------------


def set_from_shopify(item_id: int, location_id: int, sellable: int, *, shopify_updated_at) -> InventoryLevel | None:
    """Apply Shopify's ``available`` to a level; None when the level holds newer Shopify data.

    Shopify's ``available`` is sellable stock; ours is on hand with reserved units included,
    so on hand = Shopify's available + our reserved (docs/shopify.md). A negative ``available``
    (Shopify oversold) is taken as 0 sellable: our constraints keep stock non-negative.
    """
    with transaction.atomic():
        level = _lock_one(item_id, location_id, create=True)
        if level.shopify_updated_at is not None and shopify_updated_at < level.shopify_updated_at:
            return None
        InventoryLevel.objects.filter(pk=level.pk).update(shopify_updated_at=shopify_updated_at)
        level.shopify_updated_at = shopify_updated_at
        target = on_hand(sellable, level.reserved)
        if target == level.available:
            return level  # nothing changed: no event
        return _apply(level, Kind.SHOPIFY, available_delta=target - level.available,
                      reason=f"Shopify: {sellable} available")
