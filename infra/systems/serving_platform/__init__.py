"""Seed 001: the agent serving platform: a Databricks App with its code deployed (`serving-app`), the always-on
LLM endpoint, Lakebase memory registered in Unity Catalog, the prompts volume with the base prompts."""

from infra.systems.base import System, VolumeDecl
from infra.systems.serving_platform.settings import ServingPlatformSettings

PROMPTS_VOLUME_ROLE = "serving_prompts"
PROMPTS_VOLUME_PURPOSE = (
    "Agent serving app: base prompts (base/, uploaded by Pulumi) and optimised ones (optimised/, the nightly "
    "optimiser) (seed 001)"
)

SYSTEM = System(
    key="serving_platform",
    seed="001",
    title="agent serving platform",
    settings=ServingPlatformSettings,
    components="infra.systems.serving_platform.components",
    volumes=(VolumeDecl(PROMPTS_VOLUME_ROLE, "prompts_volume", PROMPTS_VOLUME_PURPOSE),),
    wheel_extra="serving",
)
