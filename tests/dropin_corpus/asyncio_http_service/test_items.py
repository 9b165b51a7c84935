import logging

import pytest

import inventory
from polling import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


class TestItemLifecycle:
    async def test_put_creates_item(self, client, caplog):
        caplog.set_level(logging.INFO, logger="inventory")
        status, item = await client.put("/items/101", {"name": "hex bolt", "qty": 40})
        assert status == 201
        assert item == {"id": 101, "name": "hex bolt", "qty": 40}
        assert "PUT /items/101 -> 201 Created" in caplog.text

    async def test_second_put_updates(self, client):
        await client.put("/items/102", {"name": "wing nut", "qty": 5})
        status, item = await client.put("/items/102", {"name": "wing nut", "qty": 8})
        assert status == 200
        assert item["qty"] == 8
        assert (await client.get("/items/102")) == (200, item)

    async def test_put_without_name_is_rejected(self, client):
        status, body = await client.put("/items/103", {"qty": 1})
        assert status == 400
        assert (await client.get("/items/103"))[0] == 404

    async def test_missing_item(self, client, caplog):
        caplog.set_level(logging.INFO, logger="inventory")
        status, body = await client.get("/items/9999")
        assert status == 404
        assert "GET /items/9999 -> 404 Not Found" in caplog.text

    async def test_delete(self, client):
        await client.put("/items/104", {"name": "spring", "qty": 2})
        status, body = await client.request("DELETE", "/items/104")
        assert status == 204
        assert (await client.get("/items/104"))[0] == 404
        assert (await client.request("DELETE", "/items/104"))[0] == 404

    async def test_delete_returns_the_removed_item(self, client):
        await client.put("/items/105", {"name": "grommet", "qty": 9})
        status, body = await client.request("DELETE", "/items/105")
        assert status == 204
        assert body == {"id": 105, "name": "grommet", "qty": 9}


@pytest.mark.parametrize(
    ("item_id", "name", "qty"),
    [(201, "carriage bolt", 10), (202, "lock nut", 0), (203, "flat washer", 250)],
)
async def test_item_round_trip(client, caplog, item_id, name, qty):
    caplog.set_level(logging.INFO, logger="inventory")
    target = f"GET /items/{item_id}"
    before = inventory.request_counts[target]

    await client.put(f"/items/{item_id}", {"name": name, "qty": qty})
    status, item = await client.get(f"/items/{item_id}")

    assert status == 200
    assert item == {"id": item_id, "name": name, "qty": qty}
    assert inventory.request_counts[target] - before == 1
    assert f"{target} -> 200 OK" in caplog.text


class TestSearch:
    async def test_new_item_becomes_searchable(self, client):
        await client.put("/items/301", {"name": "Sprocket-301", "qty": 1})
        # the index lags behind writes
        assert 301 not in (await client.get("/search?q=sprocket-301"))[1]

        async def indexed():
            return 301 in (await client.get("/search?q=sprocket-301"))[1]

        await wait_for(indexed)

    async def test_deleted_item_leaves_the_index(self, client):
        await client.put("/items/302", {"name": "gasket-302", "qty": 1})

        async def hits():
            return (await client.get("/search?q=gasket-302"))[1]

        assert await wait_for(hits) == [302]
        await client.request("DELETE", "/items/302")

        async def gone():
            return await hits() == []

        await wait_for(gone)

    @pytest.mark.parametrize("term", ["PULLEY-303", "pulley-303", "Pulley"])
    async def test_search_ignores_case(self, client, term):
        await client.put("/items/303", {"name": "Pulley-303", "qty": 1})

        async def found():
            return 303 in (await client.get(f"/search?q={term}"))[1]

        await wait_for(found)

    @pytest.mark.xfail(reason="the index only holds names; ids are not searchable yet", strict=True)
    async def test_search_by_item_id(self, client):
        await client.put("/items/304", {"name": "cotter pin", "qty": 1})

        async def found():
            return 304 in (await client.get("/search?q=304"))[1]

        await wait_for(found, timeout=0.4)


class TestReservations:
    async def test_reservation_expires(self, client, server):
        await client.put("/items/401", {"name": "anchor", "qty": 3})
        status, body = await client.request("POST", "/items/401/reserve", {"qty": 2, "ttl": 0.2})
        assert (status, body) == (200, {"id": 401, "reserved": 2})
        assert server.reservations[401] == 2

        async def released():
            return 401 not in server.reservations

        await wait_for(released)

    async def test_cannot_reserve_more_than_stock(self, client):
        await client.put("/items/402", {"name": "rivet", "qty": 2})
        status, body = await client.request("POST", "/items/402/reserve", {"qty": 3})
        assert status == 409
        assert body["available"] == 2

    async def test_competing_clients(self, client, second_client):
        await client.put("/items/403", {"name": "clamp", "qty": 1})
        first = await client.request("POST", "/items/403/reserve", {"qty": 1, "ttl": 0.25})
        second = await second_client.request("POST", "/items/403/reserve", {"qty": 1})
        assert first[0] == 200
        assert second[0] == 409

        async def reservable_again():
            status, _ = await second_client.request(
                "POST", "/items/403/reserve", {"qty": 1, "ttl": 0.05}
            )
            return status == 200

        await wait_for(reservable_again)
