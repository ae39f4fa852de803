"""Signal receivers of the add-on: user changes that must reach live sockets (docs/security.md).

- Deactivation and deletion close the user's sockets (4004); a password change, the JWT logout
  and Django's own ``logout()`` of a session that opened the live dashboard revoke the user's
  tokens (4005).
- Every way a permission can be lost makes the sockets of exactly the users who may have lost it
  re-check their rooms: a membership removed from either side (``remove``, ``clear``, ``set``),
  permissions removed from a user or a group (all its members) or from the permission's side,
  a group deleted, ``is_staff``/``is_superuser`` dropped.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import get_hasher, identify_hasher, is_password_usable
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from ..exceptions import CloseCode
from .revocation import close_sockets, recheck_rooms, revoke_tokens

WATCHED = ("is_active", "password", "is_superuser", "is_staff")


def remember_old_state(sender, instance, raw=False, update_fields=None, **kwargs):
    instance._realtime_old = None
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(WATCHED):
        return  # e.g. ``last_login`` at every login: no query
    instance._realtime_old = sender.objects.filter(pk=instance.pk).values(*WATCHED).first()


def act_on_user_change(sender, instance, created, raw=False, update_fields=None, **kwargs):
    old = getattr(instance, "_realtime_old", None)
    instance._realtime_old = None
    if raw or created or old is None:
        return
    if old["is_active"] and not instance.is_active:
        close_sockets(instance.pk, CloseCode.USER_INACTIVE, "user_inactive", "The user was deactivated")
    elif old["password"] != instance.password and not is_rehash(instance, old["password"], update_fields):
        revoke_tokens(instance, "password_changed")
    elif (old["is_superuser"] and not instance.is_superuser) or (old["is_staff"] and not instance.is_staff):
        recheck_rooms([instance.pk])


def is_rehash(user, old_hash: str, update_fields) -> bool:
    """True if a new password hash is Django re-hashing the same password, not a new password.

    ``check_password`` re-hashes a correct password whose hash is stale for the preferred hasher
    (its iterations changed after an upgrade, or another hasher is preferred) and saves it with
    ``update_fields=["password"]``, with ``user._password`` cleared: "Password hash upgrades
    shouldn't be considered password changes" (``AbstractBaseUser.check_password``). A real
    change goes through ``set_password``, which leaves ``_password`` set until after the save,
    or ``set_unusable_password``, or assigns a hash over one that was not stale: all revoke.
    """
    if getattr(user, "_password", None) is not None:
        return False
    if update_fields is None or set(update_fields) != {"password"}:
        return False
    if not (is_password_usable(old_hash) and is_password_usable(user.password)):
        return False
    try:
        old_hasher = identify_hasher(old_hash)
    except ValueError:
        return False
    preferred = get_hasher("default")
    return old_hasher.algorithm != preferred.algorithm or preferred.must_update(old_hash)


# -- permissions: m2m_changed -----------------------------------------------------------------
#
# For each relation, ``instance`` is the side the call was made on and ``pk_set`` the other
# side's ids (None for ``clear``, whose members are read at ``pre_clear``):
#   User.groups:            user.groups.remove(g)            -> the user
#                           group.user_set.remove(u)         -> the removed users (pk_set)
#   User.user_permissions:  user.user_permissions.remove(p)  -> the user
#                           permission.user_set.remove(u)    -> the removed users (pk_set)
#   Group.permissions:      group.permissions.remove(p)      -> the group's members
#                           permission.group_set.remove(g)   -> the members of the groups (pk_set)


def users_of_groups(group_ids) -> list:
    User = get_user_model()
    return list(User.objects.filter(groups__in=list(group_ids)).values_list("pk", flat=True).distinct())


def affected_users(sender, instance, reverse, pk_set) -> list:
    """The users who may lose a permission when ``pk_set`` (the whole relation if None) is removed."""
    User = get_user_model()
    if sender is User.groups.through or sender is User.user_permissions.through:
        if not reverse:
            return [instance.pk]
        if pk_set is None:  # group.user_set.clear() / permission.user_set.clear()
            return list(getattr(instance, "user_set").values_list("pk", flat=True))
        return list(pk_set)
    if sender is Group.permissions.through:
        if not reverse:
            return users_of_groups([instance.pk])
        if pk_set is None:  # permission.group_set.clear()
            return users_of_groups(instance.group_set.values_list("pk", flat=True))
        return users_of_groups(pk_set)
    return []


def permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action == "pre_clear":
        # The relation's rows are still there: who is about to lose them (sent at post_clear).
        instance._realtime_cleared = affected_users(sender, instance, reverse, None)
    elif action == "post_clear":
        users, instance._realtime_cleared = getattr(instance, "_realtime_cleared", None) or [], None
        recheck_rooms(users)
    elif action == "post_remove":
        recheck_rooms(affected_users(sender, instance, reverse, pk_set))


def user_deleted(sender, instance, **kwargs):
    """A deleted user's live sockets close like a deactivated user's (4004)."""
    close_sockets(instance.pk, CloseCode.USER_INACTIVE, "user_inactive", "The user was deleted")


def group_deleting(sender, instance, **kwargs):
    """Deleting a group removes its permissions from its users (no m2m_changed is sent for it).

    The re-check is sent after the delete commits (``send_control`` inside the delete's transaction)."""
    recheck_rooms(list(instance.user_set.values_list("pk", flat=True)))


def permission_deleting(sender, instance, **kwargs):
    """Deleting a permission removes it from its users and groups (no m2m_changed either)."""
    recheck_rooms(list(instance.user_set.values_list("pk", flat=True))
                  + users_of_groups(instance.group_set.values_list("pk", flat=True)))


# -- logout ------------------------------------------------------------------------------------

REVOKED_MARK = "realtime_revoked"  # set on a request whose logout already revoked the tokens
DASHBOARD_TOKENS_MINTED = "realtime.dashboard_tokens"  # session key: this session minted socket tokens


def logged_out(sender, request=None, user=None, **kwargs):
    """Django's own ``logout()`` (the admin's "Log out") of a session that minted tokens for the
    live dashboard (dashboard/views.py) revokes the user's tokens: the dashboard's sockets close
    (4005, ``logout``) and its tokens are refused, as after the JWT logout (docs/security.md).

    A socket does not know which session its token came from, so this revokes every token of
    the user, as every logout of the JWT API does. A session that never opened the dashboard
    revokes nothing; the JWT logout view revokes by itself and marks its request.
    """
    if user is None or getattr(request, REVOKED_MARK, False):
        return
    session = getattr(request, "session", None)
    if session is not None and session.get(DASHBOARD_TOKENS_MINTED):
        revoke_tokens(user, "logout")


def connect() -> None:
    User = get_user_model()
    pre_save.connect(remember_old_state, sender=User, dispatch_uid="realtime.user.pre_save")
    post_save.connect(act_on_user_change, sender=User, dispatch_uid="realtime.user.post_save")
    m2m_changed.connect(permissions_changed, sender=User.user_permissions.through, dispatch_uid="realtime.user_perms")
    m2m_changed.connect(permissions_changed, sender=User.groups.through, dispatch_uid="realtime.user_groups")
    m2m_changed.connect(permissions_changed, sender=Group.permissions.through, dispatch_uid="realtime.group_perms")
    post_delete.connect(user_deleted, sender=User, dispatch_uid="realtime.user.post_delete")
    pre_delete.connect(group_deleting, sender=Group, dispatch_uid="realtime.group.pre_delete")
    pre_delete.connect(permission_deleting, sender=Permission, dispatch_uid="realtime.permission.pre_delete")
    user_logged_out.connect(logged_out, dispatch_uid="realtime.user_logged_out")
