import asyncio
import logging

import pytest

from inventory import ProtocolError, Request, format_request, parse_request, parse_response


def test_parse_plain_get():
    assert parse_request("GET /items/7\n") == Request("GET", "/items/7")


def test_parse_put_with_body():
    request = parse_request('PUT /items/7 {"name": "hinge", "qty": 3}')
    assert request.method == "PUT"
    assert request.body == {"name": "hinge", "qty": 3}
    assert request.target == "PUT /items/7"


@pytest.mark.asyncio
async def test_health(client):
    status, body = await client.get("/health")
    assert status == 200
    assert body["status"] == "ok"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "empty request line"),
        ("GET", "missing path"),
        ("FETCH /items/1", "unknown method"),
        ("PUT /items/1 [1, 2]", "JSON object"),
        ("PUT /items/1 {oops", "not JSON"),
    ],
    ids=["empty", "no-path", "bad-method", "array-body", "broken-json"],
)
def test_parse_rejects_malformed_lines(line, message):
    with pytest.raises(ProtocolError, match=message):
        parse_request(line)


@pytest.mark.asyncio
async def test_malformed_request_gets_400_and_is_logged(client, caplog):
    caplog.set_level(logging.INFO, logger="inventory")
    status, body = await client.send_raw("FETCH /items/1\n")
    assert status == 400
    assert "unknown method" in body["error"]
    assert "bad request: unknown method 'FETCH'" in caplog.text


def test_format_request_round_trips():
    line = format_request("PUT", "/items/12", {"qty": 1, "name": "cog"})
    assert line == 'PUT /items/12 {"name":"cog","qty":1}\n'
    assert parse_request(line).body == {"name": "cog", "qty": 1}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('200 {"id":1}', (200, {"id": 1})),
        ("404", (404, None)),
    ],
)
def test_parse_response(line, expected):
    assert parse_response(line) == expected


@pytest.mark.asyncio
async def test_connection_serves_many_requests(client):
    statuses = [(await client.get("/health"))[0] for _ in range(5)]
    assert statuses == [200] * 5
    status, body = await client.get("/slow?ms=150")
    assert (status, body) == (200, {"waited_ms": 150})


@pytest.mark.asyncio
async def test_slow_request_does_not_block_other_connections(client, second_client):
    slow = asyncio.ensure_future(client.get("/slow?ms=300"))
    status, _ = await second_client.get("/health")
    assert status == 200
    assert not slow.done()
    assert (await slow)[0] == 200


def test_parse_response_with_reason_phrase():
    # Older servers sent "200 OK {...}"; we only ever spoke the short form.
    with pytest.raises(ProtocolError):
        parse_response('200 OK {"id": 1}')


@pytest.mark.asyncio
async def test_unknown_route(client, caplog):
    caplog.set_level(logging.INFO, logger="inventory")
    status, body = await client.get("/nowhere")
    assert status == 404
    assert body == {"error": "no route for /nowhere"}
    assert "GET /nowhere -> 404 Not Found" in caplog.text

