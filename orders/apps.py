from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from . import receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
