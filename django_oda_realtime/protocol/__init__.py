"""Wire protocols of the realtime sockets: pure codecs (``native`` for /ws/, ``socketio``).

Shared here: the bound on how deeply a client's JSON may nest. Commands need 3 or 4
levels; ``json.loads`` accepts ~1,500, and handling such data later (echoing it in an
error reply, walking it for binary attachments) overflowed the interpreter's recursion
limit and crashed the consumer. Both decoders refuse anything deeper than ``MAX_DEPTH``.
"""

MAX_DEPTH = 32


def nested_deeper_than(value: object, limit: int = MAX_DEPTH) -> bool:
    """True if ``value`` has arrays/objects nested more than ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
