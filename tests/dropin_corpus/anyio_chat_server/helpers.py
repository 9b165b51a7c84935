"""Small async helpers shared by the tests."""

import anyio


async def wait_until(predicate, *, timeout=2.0, interval=0.05):
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(interval)


async def collect(receive, count, *, timeout=2.0):
    """Take ``count`` items from a memory object stream."""
    items = []
    with anyio.fail_after(timeout):
        while len(items) < count:
            items.append(await receive.receive())
    return items


async def nothing_arrives(receive, *, within=0.2):
    """True if nothing shows up on ``receive`` for ``within`` seconds."""
    with anyio.move_on_after(within):
        item = await receive.receive()
        raise AssertionError(f"unexpected {item!r}")
    return True
