"""Serving helpers: an access log for daphne that drops query strings."""
from daphne.access import AccessLogGenerator


class PathOnlyAccessLog(AccessLogGenerator):
    """daphne's NCSA access log with the query string removed from every request line."""

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        verb, _, target = request.partition(" ")
        request = f"{verb} {target.split('?', 1)[0]}"
        super().write_entry(host, date, request, status, length, ident, user)
        self.stream.flush()
