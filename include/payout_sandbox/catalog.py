"""The sandbox's service catalog: payout methods, services, their fields, limits, fees and rates."""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payout_sandbox.money import exponent

_ALPHANUMERIC = string.ascii_letters + string.digits


def stable_token(namespace: str, value: str, length: int = 16) -> str:
    """A deterministic alphanumeric token for ``value`` (stable across processes and restarts)."""
    number = int.from_bytes(hashlib.sha256(f"{namespace}:{value}".encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[index])
    return "".join(chars)


def _label(en: str, ru: str | None = None, uk: str | None = None) -> dict[str, str]:
    return {"ru": ru or en, "en": en, "uk": uk or en}


@dataclass(frozen=True)
class ServiceField:
    """One field a service needs in ``fields`` (``regexp`` is the real pattern, single-escaped)."""

    key: str
    label: dict[str, str]
    regexp: str
    required: bool
    mask: str | None = None  # "card" (first 6 + ****** + last 4) or "tail" (****** + last 4)

    def matches(self, value: str) -> bool:
        return re.fullmatch(self.regexp, value) is not None

    def masked(self, value: str) -> str:
        """The value as responses show it (card and account numbers masked)."""
        if self.mask == "card" and len(value) >= 10:
            return f"{value[:6]}******{value[-4:]}"
        if self.mask in ("card", "tail"):
            return f"******{value[-4:]}"
        return value

    def describe(self, position: int) -> dict[str, Any]:
        """The field as the prerequest serves it: the regexp double-escaped, like the vendor's sample."""
        return {
            "key": self.key,
            "type": "string",
            "label": self.label,
            "example": None,
            "hint": self.label,
            "regexp": self.regexp.replace("\\", "\\\\"),
            "required": self.required,
            "position": position,
        }


TEST_DETAIL_FIELDS = (
    ServiceField(
        "test_details_success_rate",
        _label("Success rate (%)", "Вероятность успеха (%)", "Імовірність успіху (%)"),
        r"^\d{1,15}$",
        required=False,
    ),
    ServiceField(
        "test_details_payout_status",
        _label("Expected status", "Ожидаемый статус", "Очікуваний статус"),
        r"^[A-Z\-\sa-z]{2,64}$",
        required=False,
    ),
    ServiceField(
        "test_details_payout_resolution",
        _label("Expected resolution", "Ожидаемый resolution", "Очікуваний resolution"),
        r"^[A-Z\-\sa-z]{2,64}$",
        required=False,
    ),
)

ACCOUNT = ServiceField("account", _label("Account", "Аккаунт", "Акаунт"), r"^\d{1,15}$", True, mask="tail")
CARD_FIELDS = (
    ServiceField("card_number", _label("Card number"), r"^\d{16}$", True, mask="card"),
    ServiceField("card_holder", _label("Card holder"), r"^.{2,64}$", False),
)
HOLDER = ServiceField("account_holder", _label("Account holder"), r"^.{2,64}$", True)


@dataclass(frozen=True)
class PayoutMethod:
    code: str
    category: str
    name: str

    def describe(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "category": self.category,
            "description": "",
            "name": {"en": self.name, "ru": self.name, "uk": self.name},
            "logo": f"https://static.openfintech.io/payout_methods/{self.code}/logo.png",
            "icon": f"https://static.openfintech.io/payout_methods/{self.code}/icon.svg",
            "metadata": None,
            "position": None,
            "hide": None,
        }


METHODS: dict[str, PayoutMethod] = {
    m.code: m
    for m in (
        PayoutMethod("test", "alternative", "Test"),
        PayoutMethod("payment_card", "card", "Payment card"),
        PayoutMethod("bank_transfer", "bank", "Bank transfer"),
        PayoutMethod("swift", "bank", "SWIFT transfer"),
    )
}

ACCOUNT_INFO = {
    "name": "Payout sandbox",
    "description": "local sandbox for documenting and testing",
    "icon": "https://static-dev.psp.name/images/default.svg",
    "website": "http://127.0.0.1",
}


@dataclass(frozen=True)
class PayoutService:
    """A payout service: invoice currency -> service currency, its fields, limits, fees and rate."""

    code: str
    method: str
    currency: str
    service_currency: str
    own_fields: tuple[ServiceField, ...]
    amount_min: Decimal
    amount_max: Decimal
    exchange_rate: Decimal = Decimal(1)
    fee_rate: Decimal = Decimal(0)
    fee_fix: Decimal = Decimal(0)
    fee_min: Decimal = Decimal(0)
    fee_max: Decimal = Decimal(0)
    resource_id: str = ""
    fields: tuple[ServiceField, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", self.own_fields + TEST_DETAIL_FIELDS)
        if not self.resource_id:
            object.__setattr__(self, "resource_id", "comcpos_" + stable_token("service", self.code))

    def field_by_key(self, key: str) -> ServiceField | None:
        return next((f for f in self.fields if f.key == key), None)

    def attributes(self) -> dict[str, Any]:
        """The service's JSON:API attributes (keys as in the vendor's sample)."""
        return {
            "service": self.code,
            "service_method": self.method,
            "service_currency": self.service_currency,
            "available": True,
            "active": True,
            "enabled": True,
            "amount_min": self.amount_min,
            "amount_max": self.amount_max,
            "fee_min": self.fee_min,
            "fee_max": self.fee_max,
            "fee_rate": self.fee_rate,
            "fee_fix": self.fee_fix,
            "currency": self.currency,
            "test_mode": True,
        }


def _d(value: str) -> Decimal:
    return Decimal(value)


def _test_service(currency: str) -> PayoutService:
    return PayoutService(
        code=f"test_{currency.lower()}",
        method="test",
        currency=currency,
        service_currency=currency,
        own_fields=(ACCOUNT,),
        amount_min=_d("1") if exponent(currency) == 0 else _d("0.01"),
        amount_max=_d("9999999"),
    )


def _card_service(code: str, currency: str) -> PayoutService:
    return PayoutService(
        code=code,
        method="payment_card",
        currency=currency,
        service_currency=currency,
        own_fields=CARD_FIELDS,
        amount_min=_d("1"),
        amount_max=_d("5000"),
        fee_rate=_d("1.5"),
        fee_fix=_d("0.30"),
        fee_min=_d("0.50"),
        fee_max=_d("50"),
    )


SERVICES: dict[str, PayoutService] = {
    s.code: s
    for s in (
        *(_test_service(c) for c in ("USD", "EUR", "GBP", "ZAR", "JPY")),
        _card_service("card", "USD"),
        _card_service("card_eur", "EUR"),
        _card_service("card_gbp", "GBP"),
        PayoutService(
            code="bank_transfer_zar",
            method="bank_transfer",
            currency="USD",
            service_currency="ZAR",
            own_fields=(
                ServiceField("account_number", _label("Account number"), r"^\d{8,12}$", True, mask="tail"),
                ServiceField("bank_code", _label("Bank code"), r"^\d{6}$", True),
                HOLDER,
            ),
            amount_min=_d("0.01"),
            amount_max=_d("1000000"),
            exchange_rate=_d("18.25"),
            resource_id="comcpos_giKmqeYwcuWV4QSt",
        ),
        PayoutService(
            code="bank_transfer_eur",
            method="bank_transfer",
            currency="EUR",
            service_currency="EUR",
            own_fields=(
                ServiceField("iban", _label("IBAN"), r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$", True, mask="tail"),
                HOLDER,
            ),
            amount_min=_d("1"),
            amount_max=_d("100000"),
            fee_rate=_d("0.5"),
            fee_fix=_d("1.00"),
            fee_min=_d("1.00"),
            fee_max=_d("25"),
        ),
        PayoutService(
            code="bank_transfer_gbp",
            method="bank_transfer",
            currency="GBP",
            service_currency="GBP",
            own_fields=(
                ServiceField("sort_code", _label("Sort code"), r"^\d{6}$", True),
                ServiceField("account_number", _label("Account number"), r"^\d{8}$", True, mask="tail"),
                HOLDER,
            ),
            amount_min=_d("1"),
            amount_max=_d("100000"),
            fee_fix=_d("0.50"),
        ),
        PayoutService(
            code="bank_transfer_jpy",
            method="bank_transfer",
            currency="JPY",
            service_currency="JPY",
            own_fields=(
                ServiceField("account_number", _label("Account number"), r"^\d{7}$", True, mask="tail"),
                ServiceField("bank_code", _label("Bank code"), r"^\d{4}$", True),
                HOLDER,
            ),
            amount_min=_d("100"),
            amount_max=_d("10000000"),
            fee_fix=_d("300"),
        ),
        PayoutService(
            code="swift_jpy",
            method="swift",
            currency="GBP",
            service_currency="JPY",
            own_fields=(
                ServiceField("swift_bic", _label("SWIFT BIC"), r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$", True),
                ServiceField(
                    "account_number", _label("Account number"), r"^[A-Z0-9]{6,34}$", True, mask="tail"
                ),
                ServiceField("beneficiary_name", _label("Beneficiary name"), r"^.{2,64}$", True),
            ),
            amount_min=_d("1"),
            amount_max=_d("999999"),
            exchange_rate=_d("190.50"),
            resource_id="comcpos_RHUGUgEnmmedR7h3",
        ),
    )
}

_BY_RESOURCE_ID = {s.resource_id: s for s in SERVICES.values()}


def find_service(key: str) -> PayoutService | None:
    """A service by its resource id (``comcpos_...``) or by its code (``swift_jpy``)."""
    return _BY_RESOURCE_ID.get(key) or SERVICES.get(key)
