"""Create the benchmark users (each with ``inventory.view_inventorylevel``) and write one access token per line.

One user per socket, as in production (the server caps sockets per user). Run in
a Django-configured environment on the benchmark's private database
(``bench/run.py`` does it after ``manage.py migrate``):
``python -m bench.bench_users COUNT TOKENS_FILE``.
"""
import sys

import django


def main(count: int, path: str) -> None:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework_simplejwt.tokens import AccessToken

    User = get_user_model()
    perm = Permission.objects.get(content_type__app_label="inventory", codename="view_inventorylevel")
    names = [f"bench-{i:05d}" for i in range(count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create([User(username=n) for n in names if n not in existing], batch_size=500)
    users = list(User.objects.filter(username__in=names).order_by("username"))
    Through = User.user_permissions.through
    Through.objects.bulk_create([Through(user_id=u.pk, permission_id=perm.pk) for u in users],
                                batch_size=500, ignore_conflicts=True)
    with open(path, "w") as f:
        for user in users:
            f.write(f"{AccessToken.for_user(user)}\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
