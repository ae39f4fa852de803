from django.apps import AppConfig


class ShopifySyncConfig(AppConfig):
    name = "shopify_sync"
    verbose_name = "Shopify sync"

    def ready(self) -> None:
        from . import receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
