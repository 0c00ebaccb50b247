"""What a payment's payee and method read as, for people (exports, a citizen's copy)."""

from __future__ import annotations

from shared.funds.models import Payee, PaymentMethod
from shared.i18n import N_

PAYEES = {
    Payee.CITIZEN.value: N_("To the citizen"),
    Payee.LANDLORD.value: N_("Directly to the landlord"),
    Payee.UTILITY.value: N_("Directly to the utility company"),
    Payee.OTHER.value: N_("Other"),
}
METHODS = {
    PaymentMethod.BANK_TRANSFER.value: N_("Bank transfer"),
    PaymentMethod.CASH.value: N_("Cash"),
    PaymentMethod.VOUCHER.value: N_("Voucher"),
    PaymentMethod.DIRECT_DEBIT.value: N_("Direct debit"),
    PaymentMethod.OTHER.value: N_("Other"),
}
