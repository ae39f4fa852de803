"""The user a domain write is recorded against."""


def acting_user(user):
    """``user`` when it is an authenticated user, else None (anonymous, a system task, the shell)."""
    return user if user is not None and getattr(user, "is_authenticated", False) else None
