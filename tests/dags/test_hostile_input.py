"""Hostile batch input: every row is paid exactly as written or refused naming its field; a file
that cannot be read as a whole is refused before anything is sent.

Property tests run on the pure functions (``read_rows``, ``check_batch`` with the services of a
real sandbox prerequest, ``build_request``); three ``dag.test()`` runs check the gateway's ledger.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from payout_jobs import settings as job_settings
from payout_jobs.batch_file import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    BatchFileError,
    BatchRow,
    count_rows,
    parse_properties,
    read_rows,
)
from payout_jobs.batch_requests import build_request, row_currency
from payout_jobs.batch_validation import check_batch

DAG_ID = "payout_batch"
COLUMNS = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]
HEADER = ",".join(COLUMNS)
CARDS = ("4111111111111111", "5123817234060000", "378282246310005")  # Visa, Mastercard, Amex (15)
#: What a reason may start with: the column (or field) it names.
FIELD_NAMES = re.compile(
    r"(row|service_amount|service|fields_data|reference_id|currency|customer_metadata|customer|"
    r"description|metadata|fields)(\.[^:]+)?: "
)
HOSTILE_AMOUNTS = [
    "1e3", "1e30", "1_000", " 10 ", "+10", "-0", "\uff11\uff12", "١٢", "NaN", "Infinity", "9" * 10_000,
    "10.001", "=HYPERLINK(\"http://x\",\"y\")", "=CMD|' /C calc'!A0", "", *CARDS,
]  # fmt: skip


def csv_text(rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns or COLUMNS})
    return out.getvalue()


# ----------------------------------------------------------------------------------- services
@pytest.fixture(scope="module")
def offered(session_sandbox: Any) -> dict[str, Mapping[str, Any]]:
    """The services the real sandbox's prerequest offers, per currency (asked once each)."""
    from payout_gateway.hooks import PayoutGatewayHook

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", session_sandbox.airflow_connection())
        hook = PayoutGatewayHook()
        return {c: hook.prerequest(c, "100").services for c in ("USD", "EUR", "JPY")}


def lookup_from(offered: Mapping[str, Mapping[str, Any]]) -> Callable[[str, str], Mapping[str, Any]]:
    from payout_gateway.exceptions import PayoutValidationError

    def lookup(currency: str, amount: str) -> Mapping[str, Any]:
        if currency not in offered:
            raise PayoutValidationError("currency", "has no services")
        return offered[currency]

    return lookup


# ------------------------------------------------------------------------------ file-level checks
@pytest.fixture
def write(tmp_path: Path) -> Callable[[bytes], Path]:
    def write(content: bytes, name: str = "batch.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return write


@pytest.mark.parametrize("column", ["service_amount", "fields_data", "reference_id", "service", "currency"])
def test_a_column_given_twice_refuses_the_file(write: Callable[..., Path], column: str) -> None:
    """On main a second ``service_amount`` column silently won (its value was paid)."""
    header = f"{HEADER},{column}"
    path = write(f"{header}\ntest_usd,10.00,account:1,r-1,,,,USD,99999.00\n".encode())
    with pytest.raises(BatchFileError, match=f"'{column}' more than once"):
        list(read_rows(path))


def test_a_latin1_file_is_refused_naming_line_and_row_without_the_value(write: Callable[..., Path]) -> None:
    """On main: a bare UnicodeDecodeError, no row named."""
    text = f"{HEADER}\ntest_usd,10.00,account:1,r-1,ok,,,\ntest_usd,11.00,account:2,r-2,Müller 4111,,,\n"
    path = write(text.encode("latin-1"))
    with pytest.raises(BatchFileError) as caught:
        count_rows(path)
    message = str(caught.value)
    assert "line 3 (row 2)" in message and "UTF-8" in message
    assert "Müller" not in message and "4111" not in message


def test_encodings(write: Callable[..., Path]) -> None:
    text = f"{HEADER}\ntest_usd,10.00,account:1,r-1,Zoë,,,\n"
    assert [r.description for r in read_rows(write(codecs.BOM_UTF8 + text.encode()))] == ["Zoë"]
    with pytest.raises(BatchFileError, match="UTF-16"):
        count_rows(write(text.encode("utf-16")))
    with pytest.raises(BatchFileError, match="ends inside a character"):
        count_rows(write(text.encode() + "é".encode()[:1]))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('test_usd,10.00,"account:1"x,r-1,,,,\n', "row 1.*not valid CSV"),
        ('test_usd,10.00,account:1,r-1,,,,\ntest_usd,10.00,"account:2,r-2,,,,\n', "row 2.*not valid CSV"),
    ],
)
def test_broken_quoting_refuses_the_file(write: Callable[..., Path], body: str, expected: str) -> None:
    """An unclosed quote used to swallow every later row into one cell (those rows were never paid)."""
    with pytest.raises(BatchFileError, match=expected):
        count_rows(write(f"{HEADER}\n{body}".encode()))


def test_size_and_row_limits_refuse_the_file_before_anything_else(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert job_settings.max_batch_rows() == 100_000
    assert job_settings.max_batch_bytes() == 64 * 1024 * 1024
    rows = "".join(f"test_usd,1.00,account:{i},r-{i},,,,\n" for i in range(5))
    path = write(f"{HEADER}\n{rows}".encode())
    monkeypatch.setenv("PAYOUT_BATCH_MAX_ROWS", "5")
    assert count_rows(path) == 5
    monkeypatch.setenv("PAYOUT_BATCH_MAX_ROWS", "4")
    with pytest.raises(BatchFileError, match=r"more than 4 rows.*PAYOUT_BATCH_MAX_ROWS"):
        count_rows(path)
    monkeypatch.setenv("PAYOUT_BATCH_MAX_BYTES", "100")
    path.chmod(0o000)  # the size comes from stat: the file is not even opened
    try:
        with pytest.raises(BatchFileError, match=r"limit is 100 .*PAYOUT_BATCH_MAX_BYTES"):
            count_rows(path)
    finally:
        path.chmod(0o600)
    monkeypatch.setenv("PAYOUT_BATCH_MAX_ROWS", "many")
    with pytest.raises(ValueError, match="PAYOUT_BATCH_MAX_ROWS"):
        job_settings.max_batch_rows()


# --------------------------------------------------------------------------- rows, as properties
def cells() -> st.SearchStrategy[str]:
    """Anything a cell may hold: text, empty, huge, non-ASCII, card numbers, formulas."""
    return st.one_of(
        st.just(""),
        st.sampled_from([*CARDS, "=1+1", "@SUM(A1)", "+cmd", "-2+3", "\t=x", "null", "None", "0"]),
        st.text(max_size=12),
        st.text(st.characters(categories=["Nd", "Zs", "Cc", "So"]), max_size=8),
        st.text(min_size=300, max_size=400, alphabet="9x"),
    )


def amounts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.from_regex(r"\A[1-9][0-9]{0,3}(\.[0-9]{1,2})?\Z"),
        st.sampled_from(HOSTILE_AMOUNTS),
        cells(),
    )


def fields_data() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(1, 10**15 - 1).map(lambda n: f"account:{n}"),
        st.sampled_from(CARDS).map(lambda c: f"card_number:{c};card_holder:A B"),
        st.sampled_from(CARDS).map(lambda c: f"account:{c}"),  # a card in the account field
        st.sampled_from(CARDS).map(lambda c: f"{c}:1"),  # a card number as a key
        st.tuples(st.sampled_from(["account", "card_number", "iban", "account:1;account"]), cells()).map(
            lambda kv: f"{kv[0]}:{kv[1]}"
        ),
        cells(),
    )


@st.composite
def hostile_rows(draw: st.DrawFn) -> dict[str, str]:
    """A valid row with up to three cells made hostile (references from a small pool: duplicates)."""
    service, currency = draw(st.sampled_from([("test_usd", ""), ("test_usd", "usd"), ("test_jpy", "JPY")]))
    amount = draw(
        st.from_regex(r"\A[1-9][0-9]{0,3}" + ("" if currency == "JPY" else r"(\.[0-9]{1,2})?") + r"\Z")
    )
    row = {
        "service": service,
        "service_amount": amount,
        "fields_data": f"account:{draw(st.integers(1, 10**15 - 1))}",
        "reference_id": f"r-{draw(st.integers(1, 12))}",
        "description": draw(st.sampled_from(["", "salary"])),
        "customer": draw(st.sampled_from(["", "reference_id:c-1;name:A"])),
        "customer_metadata": "",
        "currency": currency,
    }
    hostile = {
        "service": st.one_of(st.sampled_from(["card", "test_eur", "paypal"]), cells()),
        "service_amount": amounts(),
        "fields_data": fields_data(),
        "reference_id": cells(),
        "description": cells(),
        "customer": cells(),
        "customer_metadata": cells(),
        "currency": st.sampled_from(["", "EUR", "XXX", "US", "$", "\uff35\uff33\uff24", "usd "]),
    }
    for column in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=3, unique=True)):
        row[column] = draw(hostile[column])
    return row


def rows_strategy() -> st.SearchStrategy[list[dict[str, str]]]:
    return st.lists(hostile_rows(), min_size=1, max_size=6)


def as_batch_rows(rows: list[dict[str, str]]) -> list[BatchRow]:
    """What ``read_rows`` makes of the cells (amount as written, the others stripped)."""
    return [
        BatchRow(
            row=i,
            service=r["service"].strip(),
            service_amount=r["service_amount"],
            reference_id=r["reference_id"].strip(),
            fields_data=r["fields_data"].strip(),
            description=r["description"].strip(),
            customer=r["customer"].strip(),
            customer_metadata=r["customer_metadata"].strip(),
            currency=r["currency"].strip().upper(),
        )
        for i, r in enumerate(rows, start=1)
    ]


def secrets_in(rows: list[BatchRow]) -> set[str]:
    """Every run of 9+ digits a cell holds (card or account numbers, in any column; the reasons'
    own numbers, such as a service's limits, are shorter)."""
    found: set[str] = set()
    for row in rows:
        for value in (row.service, row.service_amount, row.fields_data, row.reference_id, row.customer):
            found.update(re.findall(r"[0-9]{9,}", value))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy())
def test_each_row_is_exactly_its_cells_or_refused_naming_the_field(
    offered: dict[str, Mapping[str, Any]], rows: list[dict[str, str]]
) -> None:
    batch_rows = as_batch_rows(rows)
    result = check_batch(batch_rows, "b1", "USD", lookup_from(offered))  # never raises for a row

    numbers = [r.row for r in batch_rows]
    assert result.total_rows == len(batch_rows)
    assert sorted([*result.valid_rows, *result.rejected]) == numbers
    secrets = secrets_in(batch_rows)
    for reason in result.rejected.values():
        assert FIELD_NAMES.match(reason), reason
        assert not any(s in reason for s in secrets), reason
    event("some row paid" if result.valid_rows else "every row refused")
    references = [batch_rows[n - 1].reference_id for n in result.valid_rows]
    assert len(references) == len(set(references))
    for number in result.valid_rows:
        row = batch_rows[number - 1]
        request = build_request(row, "b1", "USD")
        assert request.amount == Decimal(row.service_amount)  # paid exactly as written
        assert request.fields == parse_properties(row.fields_data, "fields_data")
        assert request.reference_id == f"b1:{row.reference_id}"
        assert request.currency == row_currency(row, "USD")
        assert request.service == row.service


def test_one_hostile_row_never_stops_the_check_of_the_others(offered: dict[str, Mapping[str, Any]]) -> None:
    """On main ``1e30`` raised a bare decimal.InvalidOperation out of check_batch: the whole batch died."""
    rows = [
        BatchRow(row=i + 1, service="test_usd", service_amount=amount, reference_id=f"r-{i}",
                 fields_data=f"account:{4000000000 + i}")
        for i, amount in enumerate(["10.00", *HOSTILE_AMOUNTS, "11.00"])
    ]  # fmt: skip
    result = check_batch(rows, "b1", "USD", lookup_from(offered))
    assert result.valid_rows == [1, len(rows)]
    assert all(reason.startswith("service_amount: ") for reason in result.rejected.values())
    assert not any(card in " ".join(result.rejected.values()) for card in CARDS)


def test_a_gateway_outage_during_the_check_fails_it_instead_of_rejecting_rows(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catch-all for rows must not turn an outage into rejected rows (the check is retried)."""
    from payout_gateway.exceptions import PayoutGatewayError
    from payout_gateway.hooks import PayoutGatewayHook

    conn = sandbox.airflow_connection(max_retries=1, retry_delay=0.01, retry_max_wait=0.01)
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", conn)
    sandbox.set_faults([{"endpoint": "prerequest", "kind": "error_before", "rate": 1.0, "status": 503}])
    hook = PayoutGatewayHook()
    rows = [BatchRow(row=1, service="test_usd", service_amount="10.00", reference_id="r",
                     fields_data="account:1")]  # fmt: skip
    try:
        with pytest.raises(PayoutGatewayError):
            check_batch(rows, "b1", "USD", lambda c, a: hook.prerequest(c, a).services)
    finally:
        sandbox.clear_faults()


# ---------------------------------------------------------------------------- whole files
@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hostile_files_") as folder:
        yield Path(folder)


@st.composite
def files(draw: st.DrawFn) -> tuple[bytes, list[str], list[dict[str, str]], str]:
    """A batch file: header (maybe a column twice, extra or missing), rows, quoting, encoding, BOM."""
    columns = list(REQUIRED_COLUMNS) + draw(st.lists(st.sampled_from(OPTIONAL_COLUMNS), unique=True))
    columns = draw(st.permutations(columns))
    mutation = draw(st.sampled_from(["none", "none", "twice", "extra", "missing", "spaced"]))
    if mutation == "twice":
        columns = [*columns, draw(st.sampled_from(columns))]
    elif mutation == "extra":
        columns = [*columns, draw(st.sampled_from(["amount", "note", "4111111111111111"]))]
    elif mutation == "missing":
        columns = columns[1:]
    rows = draw(st.lists(st.fixed_dictionaries({c: cells() for c in dict.fromkeys(columns)}), max_size=5))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    if quoting == csv.QUOTE_MINIMAL:  # Python's writer quotes only its own line end: no other in cells
        rows = [{c: v.replace("\r", "").replace("\n", "") for c, v in row.items()} for row in rows]
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    writer.writerow([f" {c} " if mutation == "spaced" else c for c in columns])
    for row in rows:
        writer.writerow([row[c] for c in columns])
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]))
    try:
        content = out.getvalue().encode(encoding)
    except UnicodeEncodeError:
        content = out.getvalue().encode("utf-8")
        encoding = "utf-8"
    return content, columns, rows, encoding


@settings(max_examples=150, deadline=None)
@given(sample=files())
def test_a_file_is_read_exactly_as_written_or_refused_as_a_whole(
    scratch: Path, sample: tuple[bytes, list[str], list[dict[str, str]], str]
) -> None:
    content, columns, rows, encoding = sample
    utf8 = encoding in ("utf-8", "utf-8-sig") or content.isascii()
    path = scratch / "file.csv"
    path.write_bytes(content)
    names = [c.strip() for c in columns]
    try:
        read = list(read_rows(path))  # only BatchFileError may come out
    except BatchFileError as exc:
        event("file refused")
        message = str(exc)
        assert not any(card in message for card in CARDS), message
        header_ok = len(set(names)) == len(names) and set(REQUIRED_COLUMNS) <= set(names) <= set(COLUMNS)
        assert not (header_ok and utf8), f"a well-formed UTF-8 file was refused: {message}"
        assert header_ok or "column" in message or "UTF" in message, message
        return
    event("file read")
    assert len(set(names)) == len(names), "a column given twice was accepted"
    assert set(REQUIRED_COLUMNS) <= set(names) <= set(COLUMNS)
    assert len(read) == len(rows)
    if not utf8:
        return  # other bytes that happen to be valid UTF-8 are read as UTF-8
    for got, want in zip(read, rows, strict=True):
        assert got.service_amount == want.get("service_amount", "")  # as written, not stripped
        assert got.reference_id == want.get("reference_id", "").strip()
        assert got.fields_data == want.get("fields_data", "").strip()
        assert got.extra_values == 0


# --------------------------------------------------------------------------- end to end (ledger)
def batch_xcom(run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == DAG_ID, XComModel.run_id == run_id, XComModel.task_id == "check_batch"
            )
        ).all()
        return {r.key: XComModel.deserialize_value(r) for r in rows}


def test_hostile_rows_are_refused_and_only_the_valid_rows_are_paid_as_written(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path, read_report: Callable[..., Any]
) -> None:
    from payout_jobs.batch_job import rejected_rows

    hostile = [
        {"service": "test_usd", "service_amount": amount, "fields_data": f"account:{4000000100 + i}",
         "reference_id": f"bad-{i}"}
        for i, amount in enumerate(HOSTILE_AMOUNTS)
    ]  # fmt: skip
    valid = [
        {"service": "test_usd", "service_amount": "12.34", "fields_data": "account:4000000001",
         "reference_id": "ok-usd"},
        {"service": "test_jpy", "service_amount": "1000", "fields_data": "account:4000000002",
         "reference_id": "ok-jpy", "currency": "JPY"},
        {"service": "test_jpy", "service_amount": "10.00", "fields_data": "account:4000000003",
         "reference_id": "bad-jpy", "currency": "JPY"},
        {"service": "test_usd", "service_amount": "5.00", "fields_data": "account:\uff11\uff12\uff13",
         "reference_id": "bad-account"},
    ]  # fmt: skip
    batch = tmp_path / "hostile.csv"
    batch.write_text(csv_text([valid[0], *hostile, *valid[1:]]), encoding="utf-8")

    result = run_dag(DAG_ID, {"batch_file": str(batch), "output_dir": str(tmp_path / "out")})

    assert result.tasks["check_batch"] == "success"  # on main: InvalidOperation, nothing paid
    assert result.state == "failed"  # red: rows were rejected
    ledger = gateway_conn.ledger()["references"]
    assert {r.split(":", 1)[1] for r in ledger} == {"ok-usd", "ok-jpy"}
    assert {(e["invoices"], e["process_calls"]) for e in ledger.values()} == {(1, 1)}
    with gateway_conn.client() as client:
        paid = {
            ref.split(":", 1)[1]: client.get(f"/api/payout-invoices/{e['invoice_ids'][0]}").json()["data"]
            for ref, e in ledger.items()
        }
    assert Decimal(str(paid["ok-usd"]["attributes"]["amount"])) == Decimal("12.34")
    assert Decimal(str(paid["ok-jpy"]["attributes"]["amount"])) == Decimal("1000")

    folder = next(p for p in (tmp_path / "out").iterdir() if (p / "report.csv").exists())
    lines, _ = read_report(folder)
    by_ref = {line["reference_id"].split(":", 1)[1]: line for line in lines}
    assert {ref for ref, line in by_ref.items() if line["status"] == "rejected"} == {
        *(f"bad-{i}" for i in range(len(HOSTILE_AMOUNTS))),
        "bad-jpy",
        "bad-account",
    }
    assert all(by_ref[f"bad-{i}"]["reason"].startswith("service_amount: ") for i in range(len(hostile)))
    assert by_ref["bad-account"]["reason"].startswith("fields.account: does not match")
    assert not any(card in line["reason"] for line in lines for card in CARDS)

    xcom = batch_xcom(result.run_id)["batch"]  # item 6: counts and a file path, no per-row list
    assert "rejected" not in xcom and xcom["rejected_count"] == len(hostile) + 2
    assert len(json.dumps(xcom)) < 1000
    assert Path(xcom["rejected_file"]).parent == folder / "checks"
    assert rejected_rows(xcom) == {
        int(line["row"]): line["reason"] for line in lines if line["status"] == "rejected"
    }


def test_a_file_with_a_column_twice_sends_nothing(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    """On main the second ``service_amount`` column was paid."""
    columns = [*COLUMNS, "service_amount"]
    body = csv_text([], columns) + "test_usd,10.00,account:4000000001,r-1,,,,USD,9999.00\n"
    batch = tmp_path / "twice.csv"
    batch.write_text(body, encoding="utf-8")

    result = run_dag(DAG_ID, {"batch_file": str(batch), "output_dir": str(tmp_path / "out")})

    assert result.state == "failed"
    assert result.tasks["check_batch"] == "failed"
    assert gateway_conn.ledger()["references"] == {}
