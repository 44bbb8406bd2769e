"""The building blocks of the request models: the strict base class and the field helpers.

Each helper returns a pydantic ``Field`` whose description is the sentence a refusal quotes as
what is allowed, so the number in the rule and the number in the message cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from remixq.providers.runware.schemas.catalog import SIZES, sizes_text
from remixq.providers.runware.schemas.values import IMAGE_REFERENCE_TEXT, check_image_reference


def int_between(low: int, high: int) -> Any:
    return Field(ge=low, le=high, description=f"an integer from {low} to {high}")


def text_between(low: int, high: int) -> Any:
    return Field(
        min_length=low, max_length=high, description=f"a string of {low} to {high} characters"
    )


def one_of(choices: Any) -> Any:
    return Field(description="one of " + ", ".join(get_args(choices)))


def image_list(low: int, high: int, what: str = "image reference", note: str = "") -> Any:
    count = f"exactly {low}" if low == high else f"{low} to {high}"
    plural = "" if high == 1 else "s"
    return Field(
        min_length=low,
        max_length=high,
        description=f"a list of {count} {what}{plural} (UUID, http(s) URL, data URI or base64)"
        + note,
    )


def dimension(model_id: str) -> Any:
    if SIZES[model_id] is None:
        return Field(
            gt=0, description="a positive integer (the model page documents no size table)"
        )
    return Field(gt=0, description=f"a positive integer; {sizes_text(model_id)}")


ImageReference = Annotated[
    str, AfterValidator(check_image_reference), Field(description=IMAGE_REFERENCE_TEXT)
]
BOOL = Field(description="true or false")


class Strict(BaseModel):
    """Shared config: wire names (camelCase), strict types, no extras, no nulls, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        allow_inf_nan=False,
        frozen=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        # Optional means "may be omitted"; an explicit null would be sent on to the provider.
        if value is None:
            raise ValueError("null is not allowed")
        return value
