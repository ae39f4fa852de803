"""The event contract: the events, rooms, topics and commands of a project, as data.

``register_event`` / ``describe_command`` / ``describe_topic`` (in an app's ``schemas.py``) declare
the shapes; ``asyncapi.document()`` and ``typescript.declarations()`` generate the AsyncAPI 3.0
document and the TypeScript declarations from them and from the registries of rooms, topics and
commands; ``validation.validate_event`` checks a payload. See docs/contract.md.
"""
from .catalog import catalog, describe_command, describe_topic, register_event

__all__ = ["catalog", "register_event", "describe_command", "describe_topic"]
