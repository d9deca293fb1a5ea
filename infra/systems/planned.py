"""The settings of a system that is declared but not deployable yet: it can only be switched off."""

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from infra.settings.base import Section
from infra.settings.types import Flag


class PlannedSystemSettings(Section):
    """A system of the seeds that this program cannot deploy yet: it can only be switched off."""

    enabled: Flag = Field(False, description="Not deployable yet (planned): must stay false.")

    @field_validator("enabled")
    @classmethod
    def _not_yet(cls, enabled: bool) -> bool:
        if enabled:
            raise PydanticCustomError(
                "invalid_value", "cannot be true: this system is planned, not deployable yet; allowed: false"
            )
        return enabled
