"""Signal receivers of the add-on: user changes that must reach live sockets."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from .exceptions import CloseCode
from .revocation import close_sockets, recheck_rooms, revoke_tokens

WATCHED = ("is_active", "password", "is_superuser", "is_staff")


def remember_old_state(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        return
    old = sender.objects.filter(pk=instance.pk).values(*WATCHED).first()
    instance._realtime_old = old


def act_on_user_change(sender, instance, created, raw=False, **kwargs):
    old = getattr(instance, "_realtime_old", None)
    instance._realtime_old = None
    if raw or created or old is None:
        return
    if old["is_active"] and not instance.is_active:
        close_sockets(instance.pk, CloseCode.USER_INACTIVE, "user_inactive", "The user was deactivated")
    elif old["password"] != instance.password:
        revoke_tokens(instance, "password_changed")
    elif (old["is_superuser"] and not instance.is_superuser) or (old["is_staff"] and not instance.is_staff):
        recheck_rooms([instance.pk])


def permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in ("post_remove", "post_clear"):
        return
    User = get_user_model()
    if isinstance(instance, User):
        recheck_rooms([instance.pk])
    elif isinstance(instance, Group):
        recheck_rooms(list(instance.user_set.values_list("pk", flat=True)))
    elif pk_set:  # reverse side: a permission or group removed from several users
        if model is User:
            recheck_rooms(list(pk_set))
        elif model is Group:
            recheck_rooms(list(User.objects.filter(groups__in=pk_set).values_list("pk", flat=True).distinct()))


def user_deleted(sender, instance, **kwargs):
    """A deleted user's live sockets close like a deactivated user's (4004)."""
    close_sockets(instance.pk, CloseCode.USER_INACTIVE, "user_inactive", "The user was deleted")


def group_deleting(sender, instance, **kwargs):
    """Deleting a group removes its permissions from its users (no m2m_changed is sent for it).

    The re-check is sent after the delete commits (``send_control`` inside the delete's transaction)."""
    recheck_rooms(list(instance.user_set.values_list("pk", flat=True)))


def connect() -> None:
    User = get_user_model()
    pre_save.connect(remember_old_state, sender=User, dispatch_uid="realtime.user.pre_save")
    post_save.connect(act_on_user_change, sender=User, dispatch_uid="realtime.user.post_save")
    m2m_changed.connect(permissions_changed, sender=User.user_permissions.through, dispatch_uid="realtime.user_perms")
    m2m_changed.connect(permissions_changed, sender=User.groups.through, dispatch_uid="realtime.user_groups")
    m2m_changed.connect(permissions_changed, sender=Group.permissions.through, dispatch_uid="realtime.group_perms")
    post_delete.connect(user_deleted, sender=User, dispatch_uid="realtime.user.post_delete")
    pre_delete.connect(group_deleting, sender=Group, dispatch_uid="realtime.group.pre_delete")
