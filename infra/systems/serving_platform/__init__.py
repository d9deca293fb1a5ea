"""Seed 001: the agent serving platform: a Databricks App with its code deployed (`serving-app`), the always-on
LLM endpoint, Lakebase memory registered in Unity Catalog, the prompts volume with the base prompts."""

from typing import Any

from infra.settings.base import Section
from infra.systems.base import JobDecl, System, VolumeDecl
from infra.systems.serving_platform.settings import ServingPlatformSettings

PROMPTS_VOLUME_ROLE = "serving_prompts"
PROMPTS_VOLUME_PURPOSE = (
    "Agent serving app: base prompts (base/, uploaded by Pulumi) and optimised ones (optimised/, the nightly "
    "optimiser) (seed 001)"
)


def _prerequisites(stack: Any, _settings: Section) -> list[str]:
    catalog, schema = stack.catalog.name, stack.schema_.name
    return [
        f"after the first `pulumi up`, the app's service principal (stack output serving_app_service_principal) "
        f"holds USE_CATALOG on {catalog} and USE_SCHEMA on {catalog}.{schema} (to read its prompts volume and "
        f"write its telemetry tables): list it under catalog.grants and schema.grants (schema grants are "
        f"authoritative, so a grant made elsewhere would be revoked), or grant USE_CATALOG on a referenced "
        f"catalog once by hand"
    ]


SYSTEM = System(
    key="serving_platform",
    seed="001",
    title="agent serving platform",
    settings=ServingPlatformSettings,
    components="infra.systems.serving_platform.components",
    # The nightly optimisation (serverless: nothing for `infra run` to start); left out when optimizer.enabled is off.
    jobs=(JobDecl("prompt_optimizer", "prompt-optimizer", compute=None, extra="optimizer"),),
    volumes=(VolumeDecl(PROMPTS_VOLUME_ROLE, "prompts_volume", PROMPTS_VOLUME_PURPOSE),),
    wheel_extra="serving",
    prerequisites=_prerequisites,
)
