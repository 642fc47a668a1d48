"""Both paginations walked to the end: every item reached once, in a stable order."""

from __future__ import annotations

import time
from typing import Any

import httpx


def walk(api: httpx.Client, url: str, link: str) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["meta"]["count"] == len(body["data"]) <= body["meta"]["size"]
        ids += [item["id"] for item in body["data"]]
        pages += 1
        url = body["links"][link]
        assert url == "" or url.startswith("/api/payout-invoices?")
    return ids, pages


def test_cursor_walks_every_invoice_once(api: httpx.Client, new_body: Any, create_invoice: Any) -> None:
    created = [create_invoice(new_body(f"ref-page-{i:02d}"))["id"] for i in range(45)]
    forward, pages = walk(api, "/api/payout-invoices?page[size]=10", "next")
    assert pages == 5
    assert forward == list(reversed(created))  # newest first
    assert len(set(forward)) == 45

    # and back from the last page with links.prev
    last_page = api.get(f"/api/payout-invoices?page[size]=10&page[after]={forward[39]}").json()
    assert [item["id"] for item in last_page["data"]] == forward[40:]
    assert last_page["links"]["next"] == ""
    backward: list[str] = [item["id"] for item in last_page["data"]]
    url = last_page["links"]["prev"]
    while url:
        body = api.get(url).json()
        backward = [item["id"] for item in body["data"]] + backward
        url = body["links"]["prev"]
    assert backward == forward


def test_new_invoices_during_a_walk_do_not_disturb_it(
    api: httpx.Client, new_body: Any, create_invoice: Any
) -> None:
    before = [create_invoice(new_body(f"ref-walk-{i}"))["id"] for i in range(12)]
    first = api.get("/api/payout-invoices?page[size]=5").json()
    seen = [item["id"] for item in first["data"]]
    create_invoice(new_body("ref-walk-late"))  # appears at the front, not in the pages ahead
    rest, _ = walk(api, first["links"]["next"], "next")
    assert sorted(seen + rest) == sorted(before)


def test_filters_by_status_and_created_interval(
    api: httpx.Client, new_body: Any, create_invoice: Any, wait_status: Any
) -> None:
    early = [create_invoice(new_body(f"ref-early-{i}"))["id"] for i in range(3)]
    api.post("/_sandbox/clock", json={"advance_seconds": 100})
    start = int(time.time()) + 100
    late = [create_invoice(new_body(f"ref-late-{i}"))["id"] for i in range(4)]
    api.post(f"/api/payout-invoices/{late[0]}/process")
    wait_status(api, late[0], lambda s: s == "processed")

    interval = {"filter[created][gte]": start, "page[size]": 2}
    ids, pages = walk(api, "/api/payout-invoices?" + str(httpx.QueryParams(interval)), "next")
    assert sorted(ids) == sorted(late) and pages == 2
    assert all("filter%5Bcreated%5D" not in i for i in ids)
    upto = api.get("/api/payout-invoices", params={"filter[created][lte]": start - 1}).json()
    assert sorted(item["id"] for item in upto["data"]) == sorted(early)

    processed = api.get("/api/payout-invoices", params={"filter[status]": "processed"}).json()
    assert [item["id"] for item in processed["data"]] == [late[0]]
    created = api.get("/api/payout-invoices", params={"filter[status]": "created,processing"}).json()
    assert len(created["data"]) == 6
