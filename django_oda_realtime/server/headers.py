"""Reading a request's headers: from an ASGI scope, and the ``Bearer`` scheme of ``Authorization``."""


def header_values(scope: dict, name: bytes) -> list[str]:
    """Every value of the header ``name`` (lower case) in an ASGI scope, in order."""
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == name]


def header(scope: dict, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case) in an ASGI scope, None if absent."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def bearer(value: str) -> str | None:
    """The token of an ``Authorization`` value of the ``Bearer`` scheme ("" if empty); None for another scheme."""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


__all__ = ["bearer", "header", "header_values"]
