"""What depends on the server: outlets (how bytes reach a socket, chosen once per connection), the
leaner daphne of ``manage.py serve``, the access log, the shutdown drain, client addresses and headers.
Every read of daphne's, Twisted's, autobahn's or uvicorn's private attributes is in this package."""
