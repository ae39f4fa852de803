"""``manage.py serve``: daphne with an access log that never contains a query string, and less memory per socket.

daphne's HTTP access log lines include the query string (docs/design.md#daphne-access-log), so a
``?token=`` on a Socket.IO polling request would be written to the log. This
command runs daphne's own command line with an access logger that keeps the
path only, and with ``django_oda_realtime.server.serving.SlimServer``, which frees what daphne,
Twisted and autobahn keep per WebSocket but only need for the handshake (issue #7;
``python -m daphne`` is unchanged). Extra arguments go to daphne
(``manage.py serve -- --proxy-headers``).
"""
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the ASGI application with daphne (query strings kept out of the access log)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--application", default="oda_realtime.asgi:application")
        parser.add_argument("daphne_args", nargs="*", help="further daphne options, after --")

    def handle(self, *args, bind, port, application, daphne_args, **options):
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
