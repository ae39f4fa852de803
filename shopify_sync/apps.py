from django.apps import AppConfig


class ShopifySyncConfig(AppConfig):
    name = "shopify_sync"
    verbose_name = "Shopify sync"

    def ready(self) -> None:
        from . import receivers, rooms  # noqa: F401  (receivers connect on import)

        rooms.register()
        from django_oda_realtime import worker

        from . import processing

        worker.register("shopify.webhooks", processing.process_due, every=1.0)
        worker.register("shopify.prune", processing.prune, every=3600.0)
