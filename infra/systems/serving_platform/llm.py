"""The app's chat LLM: an always-on Model Serving endpoint with Foundation Model provisioned throughput, or (the
development default, for cost) an existing pay-per-token endpoint, for which nothing is created.

What the seed's `ServedEntityInput(entity_name="databricks-dbrx-instruct", workload_size="Medium",
scale_to_zero_enabled=False, min_provisioned_throughput=100)` meant, with fields that exist together: a
`system.ai` model and version, `provisioned_model_units`, and `scale_to_zero_enabled=False` (always on: no cold
start, billed while it exists). AI Gateway tracks usage (system.serving.endpoint_usage) and logs every request
and response to inference tables in the platform schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_databricks as db

from infra.settings.types import principal_kind
from infra.systems.serving_platform.settings import ExistingLlm, ProvisionedLlm


@dataclass(frozen=True)
class ServingLlmArgs:
    settings: ProvisionedLlm | ExistingLlm
    endpoint_name: str
    """Physical name of a provisioned endpoint (unused for an existing one)."""
    catalog: pulumi.Input[str]
    schema: pulumi.Input[str]
    """Where the inference tables go: the platform schema (its bare name)."""
    tags: Mapping[str, str]


def access_control(principal: str, level: str) -> db.PermissionsAccessControlArgs:
    """One Permissions entry, addressed the way Databricks addresses that kind of principal."""
    kind = principal_kind(principal)
    if kind == "user":
        return db.PermissionsAccessControlArgs(user_name=principal, permission_level=level)
    if kind == "service_principal":
        return db.PermissionsAccessControlArgs(service_principal_name=principal, permission_level=level)
    return db.PermissionsAccessControlArgs(group_name=principal, permission_level=level)


class ServingLlm(pulumi.ComponentResource):
    """Children (provisioned throughput only): `ModelServing` <name> (always on, AI Gateway usage tracking and
    inference tables) and, when endpoint_permissions are set, its `Permissions` (authoritative on the endpoint).
    An existing endpoint creates nothing. Changing the model or version updates the endpoint in place."""

    endpoint_name: pulumi.Output[str]
    """The endpoint the app queries (its `llm-endpoint` resource)."""
    provisioned: bool

    def __init__(self, name: str, args: ServingLlmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:ServingLlm", name, None, opts)
        s = args.settings
        self.provisioned = isinstance(s, ProvisionedLlm)
        if not isinstance(s, ProvisionedLlm):
            self.endpoint_name = pulumi.Output.from_input(s.endpoint)
            self.register_outputs({"endpoint_name": self.endpoint_name})
            return
        served = s.entity_name.rsplit(".", 1)[-1].replace("_", "-")[:60]
        endpoint = db.ModelServing(
            name,
            name=args.endpoint_name,
            description="Seed 001: the agent serving app's always-on LLM (provisioned throughput)",
            config=db.ModelServingConfigArgs(
                served_entities=[
                    db.ModelServingConfigServedEntityArgs(
                        name=served,
                        entity_name=s.entity_name,
                        entity_version=s.entity_version,
                        provisioned_model_units=s.provisioned_model_units,
                        scale_to_zero_enabled=False,
                    )
                ],
                traffic_config=db.ModelServingConfigTrafficConfigArgs(
                    routes=[
                        db.ModelServingConfigTrafficConfigRouteArgs(served_entity_name=served, traffic_percentage=100)
                    ]
                ),
            ),
            ai_gateway=db.ModelServingAiGatewayArgs(
                usage_tracking_config=db.ModelServingAiGatewayUsageTrackingConfigArgs(enabled=True),
                inference_table_config=db.ModelServingAiGatewayInferenceTableConfigArgs(
                    enabled=True,
                    catalog_name=args.catalog,
                    schema_name=args.schema,
                    table_name_prefix=s.inference_table_prefix,
                ),
            ),
            tags=[db.ModelServingTagArgs(key=k, value=v) for k, v in sorted(args.tags.items())],
            opts=pulumi.ResourceOptions(parent=self),
        )
        if s.endpoint_permissions:
            db.Permissions(
                f"{name}-permissions",
                serving_endpoint_id=endpoint.serving_endpoint_id,
                access_controls=[access_control(p, lvl) for p, lvl in sorted(s.endpoint_permissions.items())],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.endpoint_name = endpoint.name
        self.register_outputs({"endpoint_name": self.endpoint_name})
