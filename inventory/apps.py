from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"

    def ready(self) -> None:
        from . import commands, receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
        commands.register()
