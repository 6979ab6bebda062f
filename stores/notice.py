"""The controller details of the employee privacy notice (GDPR Art. 13), per customer.

The employer is the controller of its staff's data in these reports and must say who it is, on
what legal basis it processes, whom to contact and which rights people have. Those facts are
not the product's to invent: a customer fills them in ``$WELLBEING_HOME/notice.toml``::

    [default]
    controller = "The employer named in your contract"
    legal_basis = "Art. 6(1)(f) GDPR, legitimate interest in evaluating a staff benefit"
    dpo_contact = "privacy@provider.example"

    [customers.acme]
    controller = "ACME Moderation Services Ltd, 1 Example Street, Dublin"
    dpo_contact = "dpo@acme.example"

A customer's section overrides the default key by key. A missing value is shown as "not
configured yet — ask your employer's HR team", never made up.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["NoticeDetails", "NoticeConfigError", "NOT_CONFIGURED", "load_notice_details"]

NOT_CONFIGURED = "not configured yet — ask your employer's HR team"
DEFAULT_RIGHTS = (
    "You can ask your employer for access to, correction or erasure of data about you, object to its use, and "
    "complain to your data protection authority. Because these reports hold no data about any one person, an "
    "access request to your employer will find none in them; the provider answers for your own records."
)


class NoticeConfigError(ValueError):
    """``notice.toml`` could not be read; the message names the file and what to fix."""


class NoticeDetails(BaseModel):
    """Art. 13 items of one customer's notice (free text the customer provides; shown as given)."""

    model_config = ConfigDict(extra="forbid")

    controller: str = Field(NOT_CONFIGURED, max_length=500)
    legal_basis: str = Field(NOT_CONFIGURED, max_length=500)
    dpo_contact: str = Field(NOT_CONFIGURED, max_length=300)
    rights: str = Field(DEFAULT_RIGHTS, max_length=2000)


def load_notice_details(path: Path, customer_id: str | None) -> NoticeDetails:
    """The notice details for ``customer_id`` (or the default) from ``path``; defaults when the file is absent."""
    if not path.exists():
        return NoticeDetails()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise NoticeConfigError(f"{path}: cannot be read as TOML ({exc}); fix the file or remove it") from None
    values = dict(raw.get("default", {}))
    if customer_id:
        values.update(raw.get("customers", {}).get(customer_id, {}))
    try:
        return NoticeDetails(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise NoticeConfigError(
            f"{path}: {where}: {first['msg']}; keys are {list(NoticeDetails.model_fields)}"
        ) from None
