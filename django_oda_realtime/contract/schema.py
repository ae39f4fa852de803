"""Small builders of JSON Schema for event data (draft-07, the dialect of AsyncAPI 3.0 schemas): plain dicts.

``obj({"orderId": ID, "note": string()}, optional={"userId": nullable(ID)})`` is an object
with exactly those keys: required ones, optional ones, and no others (``additionalProperties:
false``), so a payload that gains or loses a key no longer matches its contract
(docs/contract.md). Any JSON Schema dict works wherever these are accepted.
"""


def string(*, enum=None, format: str | None = None, description: str = "", **extra) -> dict:
    schema: dict = {"type": "string", **extra}
    if enum is not None:
        schema["enum"] = list(enum)
    if format:
        schema["format"] = format
    if description:
        schema["description"] = description
    return schema


def integer(**extra) -> dict:
    return {"type": "integer", **extra}


def number(**extra) -> dict:
    return {"type": "number", **extra}


def boolean(**extra) -> dict:
    return {"type": "boolean", **extra}


def const(value) -> dict:
    return {"const": value}


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def nullable(schema: dict) -> dict:
    """``schema`` or null (``userId`` when no user made the change)."""
    if isinstance(schema.get("type"), str) and "enum" not in schema and "const" not in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict | None = None, *, optional: dict | None = None, description: str = "") -> dict:
    """An object with exactly these keys: ``required`` always present, ``optional`` maybe."""
    properties = {**(required or {}), **(optional or {})}
    schema: dict = {"type": "object", "properties": properties, "required": list(required or {}),
                    "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def mapping(values: dict | None = None, **extra) -> dict:
    """An object with any keys (``values``: the schema of every value, default any JSON)."""
    schema: dict = {"type": "object", **extra}
    if values is not None:
        schema["additionalProperties"] = values
    return schema


ANY: dict = {}
ID = string(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="An id, as a string")
DATETIME = string(format="date-time")
# An id as a client may send it in a topic's data (``django_oda_realtime.rooms.normalize_id``).
ID_ARG = {"anyOf": [integer(minimum=0), ID]}
