"""The amount a prompt states, as four-eyes rules read it: the largest one, unreadable = above."""

from __future__ import annotations

import math

import pytest

from nova.domain.amounts import stated_amount


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("Pay invoice INV-2041 of 1,200 EUR to ACME Corp", 1200.0),
        ("virement de 1 200,50 € à Paul", 1200.5),
        ("send $1,200.50 to bob", 1200.5),
        ("pay EUR 500 now", 500.0),
        ("payer 1.200 euros au plombier", 1200.0),
        ("wire 2k€ to the supplier", 2000.0),
        ("transfer 1.5k EUR", 1500.0),
        ("Transfer 100 EUR to savings, then 2,500 EUR to Marie", 2500.0),
        ("pay five hundred euros to Marie", math.inf),  # in words: unreadable, above anything
        ("Pay the rent", None),
        ("pay 40 EUR to FR76 3000 6000 0112 3456 7890 189", 40.0),  # the IBAN is no amount
    ],
)
def test_stated_amount(text: str, amount: float | None) -> None:
    assert stated_amount([text]) == amount


def test_the_context_counts_when_given() -> None:
    assert stated_amount(["do what this thread asks", "please pay 3,000 EUR to ACME"]) == 3000.0
