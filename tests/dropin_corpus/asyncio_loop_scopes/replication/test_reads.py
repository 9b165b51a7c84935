import asyncio

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="package")


async def test_replica_runs_on_the_package_loop(primary, replica):
    assert primary.loop is asyncio.get_running_loop()
    assert not replica._task.done()


async def test_unrelated_topics_are_ignored(primary, replica):
    await primary.publish("audit.kv.flag", True)
    await primary.publish("kv.flag", False)
    await replica.wait_for("flag", False)
    assert "kv.flag" not in replica.state
