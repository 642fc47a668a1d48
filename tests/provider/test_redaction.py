"""Texts built from gateway answers lose secrets and card/account numbers."""

from __future__ import annotations

import pytest
from payout_gateway.redaction import redact_text, register_secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 5123817234060000 refused", "card ******0000 refused"),
        ("card 5123 8172 3406 0000 refused", "card ******0000 refused"),
        ("iban DE89370400440532013000 bad", "iban ******3000 bad"),
        ("masked 512381******0000 stays", "masked 512381******0000 stays"),
        ("created 1597835735 id cpoi_VdHYVxq4RsLEebAQ", "created 1597835735 id cpoi_VdHYVxq4RsLEebAQ"),
        (
            "reference af-028f0df5b8596fbcd10c9720b7a4784f8e7e04f6",
            "reference af-028f0df5b8596fbcd10c9720b7a4784f8e7e04f6",
        ),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_registered_and_given_secrets_are_replaced() -> None:
    register_secret("sk_test_registered_value")
    assert redact_text("key sk_test_registered_value.") == "key ***."
    assert redact_text("pk pk_test_given", secrets=["pk_test_given"]) == "pk ***"
    assert redact_text("pk pk_test_given") == "pk pk_test_given"
