"""The approval settings and rules (``payout_jobs.approval``): what is asked, of whom, and why not.

The runs themselves (approved, rejected, timed out, self-approval refused) are in
``tests/dags/test_approval.py``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from payout_jobs import approval
from payout_jobs.approval import ApprovalSettingError, Policy


def policy(threshold: str | None = "0", approvers: tuple[str, ...] = ("checker", "admin")) -> Policy:
    return Policy(
        threshold=None if threshold is None else Decimal(threshold),
        approvers=approvers,
        timeout=timedelta(hours=1),
    )


def request(totals: dict[str, str], to_pay: int = 1) -> approval.ApprovalRequest:
    return approval.ApprovalRequest(
        kind="batch",
        batch_id="b",
        file="f.csv",
        file_sha256="0" * 64,
        to_pay=to_pay,
        rejected=0,
        totals=totals,
        largest=[],
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", Decimal(0)),
        ("0", Decimal(0)),
        ("1000", Decimal(1000)),
        (" 2500.50 ", Decimal("2500.50")),
        ("off", None),
        ("OFF", None),
    ],
)
def test_threshold_values(monkeypatch: pytest.MonkeyPatch, raw: str, expected: Decimal | None) -> None:
    monkeypatch.setenv("PAYOUT_APPROVAL_THRESHOLD", raw)
    assert approval.threshold() == expected


@pytest.mark.parametrize(
    "raw", ["-1", "1e3", "1,000", "\uff11\uff10", "10.", ".5", "1.2.3", "no", "4111111111111111111", "nan"]
)
def test_bad_threshold_is_a_clear_error_that_does_not_echo_it(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("PAYOUT_APPROVAL_THRESHOLD", raw)
    with pytest.raises(
        ApprovalSettingError, match="PAYOUT_APPROVAL_THRESHOLD: must be 'off' or a total"
    ) as err:
        approval.threshold()
    assert raw not in str(err.value).split("(")[0]  # the value is not echoed


def test_approvers_are_names_without_blanks_or_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYOUT_APPROVERS", " checker, ,admin,checker ")
    assert approval.approvers() == ("checker", "admin")
    monkeypatch.setenv("PAYOUT_APPROVERS", "checker,bad name")
    with pytest.raises(ApprovalSettingError, match="PAYOUT_APPROVERS: entry 2 is not a user name"):
        approval.approvers()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", timedelta(hours=24)),
        ("90", timedelta(seconds=90)),
        ("PT4H", timedelta(hours=4)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("pt30m", timedelta(minutes=30)),
    ],
)
def test_timeout_values(monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta) -> None:
    monkeypatch.setenv("PAYOUT_APPROVAL_TIMEOUT", raw)
    assert approval.response_timeout() == expected


@pytest.mark.parametrize("raw", ["0", "P", "PT", "1.5", "-5", "P31D", "4 hours", "PT4H30"])
def test_bad_timeout_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PAYOUT_APPROVAL_TIMEOUT", raw)
    with pytest.raises(ApprovalSettingError, match="PAYOUT_APPROVAL_TIMEOUT"):
        approval.response_timeout()


def test_threshold_is_compared_per_currency_at_or_above() -> None:
    at_100 = policy("100")
    assert approval.why_no_approval(request({"USD": "99.99", "JPY": "99"}), at_100, "maker")
    assert approval.why_no_approval(request({"USD": "100.00"}), at_100, "maker") is None
    assert approval.why_no_approval(request({"USD": "1.00", "JPY": "100"}), at_100, "maker") is None


def test_default_zero_asks_for_everything_but_an_empty_batch() -> None:
    assert approval.why_no_approval(request({"USD": "0.01"}), policy("0"), "maker") is None
    assert "nothing to pay" in approval.why_no_approval(request({}, to_pay=0), policy("0"), "maker")
    assert "nothing to pay" in approval.why_no_approval(None, policy("0"), "maker")


def test_off_says_so() -> None:
    why = approval.why_no_approval(request({"USD": "5000.00"}), policy(None), "maker")
    assert why.startswith("approval is off (PAYOUT_APPROVAL_THRESHOLD=off)")


def test_a_run_nobody_triggered_always_asks_even_below_the_threshold() -> None:
    assert approval.why_no_approval(request({"USD": "1.00"}), policy("1000"), None) is None


def test_the_maker_is_never_an_approver() -> None:
    assert approval.allowed_approvers(policy(), "admin") == ["checker"]
    assert approval.allowed_approvers(policy(), "ADMIN") == ["checker"]  # case does not help
    assert approval.allowed_approvers(policy(), None) == ["checker", "admin"]
    with pytest.raises(ApprovalSettingError, match="names only checker, who triggered this run"):
        approval.allowed_approvers(policy(approvers=("checker",)), "checker")
    with pytest.raises(ApprovalSettingError, match="PAYOUT_APPROVERS is empty"):
        approval.allowed_approvers(policy(approvers=()), "maker")


@pytest.mark.parametrize(
    ("responder", "maker", "refused"),
    [
        ({"id": "checker", "name": "checker"}, "maker", None),
        ({"id": "maker", "name": "maker"}, "maker", "maker triggered this run"),
        ({"id": "Maker", "name": "Maker"}, "maker", "Maker triggered this run"),
        ({"id": "eve", "name": "eve"}, "maker", "eve is not in PAYOUT_APPROVERS"),
        (None, "maker", "the answer names no user"),
        ({"id": "admin", "name": "admin"}, None, None),  # scheduled run: any approver
    ],
)
def test_an_approval_counts_only_from_an_allowed_approver_who_is_not_the_maker(
    responder: dict | None, maker: str | None, refused: str | None
) -> None:
    why = approval.refusal(responder, policy(approvers=("checker", "admin", "maker")), maker)
    assert (why is None) if refused is None else (refused in why)


@given(st.text(alphabet="0123456789", min_size=5, max_size=30))
def test_recipients_are_masked_to_the_last_four(number: str) -> None:
    shown = approval.masked_recipient({"card_number": number, "bad name": number})
    assert shown == f"card_number ******{number[-4:]}"


def test_largest_payouts_and_totals_use_the_currency_decimals() -> None:
    payouts = [
        approval.payout(1, "b:r1", "10.5", "USD", "test_usd", {"account": "12345678"}),
        approval.payout(2, "b:r2", "700", "JPY", "test_jpy", {"account": "87654321"}),
        approval.payout(3, "b:r3", "99.99", "USD", "test_usd", {"account": "11112222"}),
    ]
    built = approval.build_request(kind="batch", batch_id="b", payouts=payouts)
    assert built["totals"] == {"JPY": "700", "USD": "110.49"}
    assert [p["row"] for p in built["largest"]] == [2, 3, 1]
    assert all("12345678" not in str(p) for p in built["largest"])


def test_markdown_in_names_is_escaped() -> None:
    assert approval.md("[x](http://evil)") == "\\[x\\]\\(http://evil\\)"


def test_card_like_numbers_in_names_are_masked_in_the_body() -> None:
    assert "4111111111111111" not in approval.md("payroll-4111111111111111.csv")
