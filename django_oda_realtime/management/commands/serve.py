"""``manage.py serve``: daphne with an access log that never contains a query string, and less memory per socket.

daphne's HTTP access log lines include the query string (docs/design.md#daphne-access-log), so a
``?token=`` on a Socket.IO polling request would be written to the log. This
command runs daphne's own command line with an access logger that keeps the
path only, and with ``django_oda_realtime.server.serving.SlimServer``, which frees what daphne,
Twisted and autobahn keep per WebSocket but only need for the handshake (issue #7;
``python -m daphne`` is unchanged). Extra arguments go to daphne
(``manage.py serve -- --proxy-headers``). The application is ``--application`` (``module:attribute``),
else the ``ASGI_APPLICATION`` setting (``module.attribute``, as Channels reads it).
"""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def application_path(given: str | None) -> str:
    """daphne's ``module:attribute`` for ``--application`` or ``settings.ASGI_APPLICATION``."""
    if given:
        return given
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not dotted or not isinstance(dotted, str) or "." not in dotted:
        raise CommandError(
            "No ASGI application to serve: set ASGI_APPLICATION in your settings (e.g. "
            '"mysite.asgi.application") or pass --application mysite.asgi:application'
        )
    module, attribute = dotted.rsplit(".", 1)
    return f"{module}:{attribute}"


class Command(BaseCommand):
    help = "Serve the ASGI application with daphne (query strings kept out of the access log)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--application", default=None, help="module:attribute (default: the ASGI_APPLICATION setting)"
        )
        parser.add_argument("daphne_args", nargs="*", help="further daphne options, after --")

    def handle(self, *args, bind, port, application, daphne_args, **options):
        application = application_path(application)
        from daphne import cli

        from django_oda_realtime.server.serving import PathOnlyAccessLog, SlimServer

        cli.AccessLogGenerator = PathOnlyAccessLog
        interface = cli.CommandLineInterface()
        interface.server_class = SlimServer
        # daphne's own WebSocket ping every 20 s costs CPU per idle socket; both protocols have
        # their own heartbeat (IDLE_TIMEOUT, Engine.IO pings), so daphne's runs rarely.
        # Options after ``--`` come later and win.
        interface.run(
            ["-b", bind, "-p", str(port), "--access-log", "-", "--ping-interval", "120", "--ping-timeout", "60",
             *daphne_args, application]
        )
