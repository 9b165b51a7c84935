import pytest

pytestmark = pytest.mark.asyncio(loop_scope="package")


async def test_write_reaches_replica(primary, replica):
    await primary.publish("kv.colour", "teal")
    assert replica.state.get("colour") != "teal"
    await replica.wait_for("colour", "teal")


async def test_last_write_wins(primary, replica):
    for size in ("S", "M", "L"):
        await primary.publish("kv.size", size)
    await replica.wait_for("size", "L")
