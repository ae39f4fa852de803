"""The seed document's client snippets, as written (seed_snippets.mjs), work against our server."""
import asyncio
import os

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import publish
from tests.conftest import token_for
from tests.socketio_client.node import HERE, ROOT, node_binary

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PERMS = ["inventory.view_inventorylevel", "inventory.change_inventorylevel", "orders.view_order"]


async def read_until(proc, wanted: list[str], timeout: float = 10.0) -> list[str]:
    """Output lines until every ``wanted`` prefix has been seen."""
    lines: list[str] = []
    async with asyncio.timeout(timeout):
        while not all(any(line.startswith(w) for line in lines) for w in wanted):
            line = await proc.stdout.readline()
            assert line, "the script ended early:\n" + "".join(lines)
            lines.append(line.decode().rstrip("\n"))
    return lines


async def test_the_seed_documents_client_snippets_run_as_written(sio_server, sio_layer, make_user):
    user = await database_sync_to_async(make_user)(perms=PERMS)
    proc = await asyncio.create_subprocess_exec(
        node_binary(), str(HERE / "seed_snippets.mjs"), cwd=ROOT,
        env={**os.environ, "SIO_URL": sio_server.url, "SIO_TOKEN": token_for(user)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        lines = await read_until(proc, [
            "Connected to WebSocket server", "Connection confirmed: {", "HARNESS subscribed",
            "Inventory update failed: inventoryItemId must be a positive integer id",
            "Reservation failed: inventoryItemId must be a positive integer id",
            "Connection failed: token_invalid",
        ])
        send = database_sync_to_async(publish)
        await send("inventory:updated", {"available": 7}, ["inventory:location:location-2"])
        await send("inventory:lowStock", {"available": 2}, ["inventory:product:product-1"])
        await send("order:updated", {"status": "shipped"}, ["orders:customer:customer-123"])
        await send("notification", {"message": "Maintenance at 02:00 UTC"}, ["broadcast"], type="system:maintenance")
        lines += await read_until(proc, [
            "Inventory updated: { available: 7 }", "Low stock alert: { available: 2 }",
            "Order updated: { status: 'shipped' }", "Maintenance notification: { message: 'Maintenance at 02:00 UTC' }",
        ])
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 5)
    assert not [line for line in lines if "Error" in line and "failed" not in line], lines
