import asyncio
import logging
import os
import signal

import pytest

import inventory


@pytest.mark.asyncio(loop_scope="session")
async def test_sigusr1_reloads_configuration(server, caplog):
    caplog.set_level(logging.INFO, logger="inventory")
    loop = asyncio.get_running_loop()
    reloaded = asyncio.Event()
    generation = server.config_generation

    def on_sigusr1():
        server.reload()
        reloaded.set()

    loop.add_signal_handler(signal.SIGUSR1, on_sigusr1)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(reloaded.wait(), timeout=2)
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1)

    assert server.config_generation == generation + 1
    assert f"configuration reloaded (generation {generation + 1})" in caplog.text


@pytest.mark.asyncio(loop_scope="session")
async def test_bulk_import(client):
    status, _ = await client.request("POST", "/bulk", {"items": [{"name": "bolt"}]})
    if status == 501:
        pytest.skip("this server build has no bulk import")
    assert status == 200


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("millis", [200, 300])
async def test_slow_endpoint_waits(client, millis):
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await client.get(f"/slow?ms={millis}")
    assert status == 200
    assert body == {"waited_ms": millis}
    assert loop.time() - started >= millis / 1000 * 0.9


@pytest.mark.asyncio(loop_scope="session")
async def test_private_server_on_fixed_port(unused_tcp_port):
    private = inventory.InventoryServer(port=unused_tcp_port, index_delay=0.01)
    await private.start()
    try:
        client = await inventory.InventoryClient.connect("127.0.0.1", unused_tcp_port)
        await client.put("/items/1", {"name": "private", "qty": 1})
        assert (await client.get("/items/1"))[1]["name"] == "private"
        await client.close()
    finally:
        await private.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", unused_tcp_port)


@pytest.mark.asyncio(loop_scope="session")
async def test_requests_are_exported_as_metrics(client, metrics_sink):
    reader, _ = metrics_sink
    await client.get("/health")
    line = await asyncio.wait_for(reader.readline(), timeout=1)
    assert line.startswith(b"inventory.requests ")
