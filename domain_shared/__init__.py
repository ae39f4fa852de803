"""What the domain apps (inventory, orders, notifications, ...) share: nothing of the socket layer
except the one edge where a domain refusal becomes a command error (``errors.as_command_errors``)."""
