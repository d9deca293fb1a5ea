"""The Unity Catalog component under recording mocks: names, parents, tags, retention, grants."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.components.catalog import SchemaSpec, UnityCatalog, UnityCatalogArgs, VolumeSpec, merge_grants
from infra.settings import CatalogSettings
from infra.tools.offline import Plan, unwrap
from tests.conftest import provider, with_provider

TAGS = {"project": "agent-platform", "environment": "dev", "stack": "test", "managed_by": "pulumi"}
PLATFORM = SchemaSpec(
    key="platform",
    name="agents_dev",
    comment="platform",
    volumes={"wheels": VolumeSpec("wheels", "w"), "eval_sessions": VolumeSpec("eval_sessions", "s")},
    grants={"devs": ("SELECT", "USE_SCHEMA")},
)
AGENT = SchemaSpec(key="agent", name="hm_dev", comment="agent", volumes={"runbooks": VolumeSpec("runbooks", "r")})


def build(catalog: CatalogSettings, catalog_grants: dict[str, tuple[str, ...]], protect: bool) -> Callable[[], None]:
    def program() -> None:
        args = UnityCatalogArgs(catalog, catalog_grants, (PLATFORM, AGENT), TAGS, protect)
        UnityCatalog("unity-catalog", args, opts=with_provider(provider()))

    return program


@pytest.fixture
def referenced(run: Callable[..., Plan]) -> Plan:
    return run(build(CatalogSettings(name="main"), {"devs": ("USE_CATALOG",)}, protect=False))


def test_schemas_and_volumes_are_named_and_parented(referenced: Plan) -> None:
    """Physical names are the configured ones; each volume sits in its schema's component."""
    schema = referenced.one("Schema", "platform")
    assert unwrap(schema.inputs).items() >= {"catalogName": "main", "name": "agents_dev", "comment": "platform"}.items()
    assert schema.parent == "agent-platform:catalog:DataSchema::platform"
    volume = referenced.one("Volume", "platform-wheels")
    assert unwrap(volume.inputs) == {
        "catalogName": "main", "schemaName": "agents_dev", "name": "wheels", "volumeType": "MANAGED", "comment": "w",
    }  # fmt: skip
    assert volume.parent == "agent-platform:catalog:DataSchema::platform"
    assert referenced.one("Volume", "agent-runbooks").inputs["schemaName"] == "hm_dev"
    assert referenced.one("DataSchema", "agent").parent == "agent-platform:catalog:UnityCatalog::unity-catalog"


def test_data_is_always_retained_and_protected_only_when_asked(run: Callable[..., Plan], referenced: Plan) -> None:
    """Schemas and volumes survive `pulumi destroy` and removal from the program; protect is the stack's call."""
    data = referenced.all("Schema") + referenced.all("Volume")
    assert len(data) == 5
    assert all(r.retain_on_delete and not r.protect for r in data)
    protected = run(build(CatalogSettings(name="main"), {}, protect=True))
    assert all(r.retain_on_delete and r.protect for r in protected.all("Schema") + protected.all("Volume"))


def test_every_schema_and_volume_is_tagged_and_tags_are_never_protected(run: Callable[..., Plan]) -> None:
    """UC tags label each securable; a tag is removable even under protected data."""
    plan = run(build(CatalogSettings(name="main"), {}, protect=True))
    tags = plan.all("EntityTagAssignment")
    securables = {(t.inputs["entityType"], t.inputs["entityName"]) for t in tags}
    assert securables == {
        ("schemas", "main.agents_dev"), ("schemas", "main.hm_dev"), ("volumes", "main.agents_dev.wheels"),
        ("volumes", "main.agents_dev.eval_sessions"), ("volumes", "main.hm_dev.runbooks"),
    }  # fmt: skip
    assert len(tags) == len(securables) * len(TAGS)
    wheels = {
        t.inputs["tagKey"]: t.inputs["tagValue"]
        for t in tags
        if t.parent == "databricks:index/volume:Volume::platform-wheels"
    }
    assert wheels == TAGS
    assert not any(t.protect for t in tags)


def test_referenced_catalog_is_looked_up_and_granted_additively(referenced: Plan) -> None:
    """A shared catalog is never created, and only the listed principals' privileges are managed on it."""
    assert not referenced.all("Catalog")
    grant = referenced.one("Grant")
    assert unwrap(grant.inputs) == {"catalog": "main", "principal": "devs", "privileges": ["USE_CATALOG"]}
    assert not [g for g in referenced.all("Grants") if "catalog" in g.inputs]


def test_schema_grants_are_authoritative_and_only_when_configured(referenced: Plan) -> None:
    """The stack owns its schemas' access; a schema without configured grants gets no Grants resource."""
    grants = referenced.one("Grants")
    assert grants.name == "platform-grants"
    assert unwrap(grants.inputs) == {
        "schema": "main.agents_dev",
        "grants": [{"principal": "devs", "privileges": ["SELECT", "USE_SCHEMA"]}],
    }


def test_created_catalog_is_retained_tagged_and_granted_authoritatively(run: Callable[..., Plan]) -> None:
    """A catalog the stack creates is data too: retained, protected when asked, its access owned by the stack."""
    plan = run(build(CatalogSettings(name="agents", create=True, comment="c"), {"devs": ("USE_CATALOG",)}, True))
    catalog = plan.one("Catalog")
    assert (catalog.inputs["name"], catalog.retain_on_delete, catalog.protect) == ("agents", True, True)
    assert plan.one("Grants", "catalog-grants").inputs["catalog"] == "agents"
    assert not plan.all("Grant")
    assert {t.inputs["tagKey"] for t in plan.all("EntityTagAssignment") if t.inputs["entityType"] == "catalogs"} == set(
        TAGS
    )
    assert plan.one("Schema", "platform").inputs["catalogName"] == "agents"


def test_every_resource_uses_the_explicit_provider(referenced: Plan) -> None:
    """Nothing may fall back to the default provider (and so to ambient credentials for another workspace)."""
    custom = [r for r in referenced.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    assert custom and all((r.provider or "").split("::")[-2] == "workspace" for r in custom)


def test_merge_grants_adds_the_job_principal_and_sorts() -> None:
    """The identity the jobs run as gets what they need, merged with configured grants, in a stable order."""
    merged = merge_grants({"devs": ("USE_SCHEMA", "SELECT"), "sp": ("SELECT",)}, "sp", ("USE_SCHEMA", "SELECT"))
    assert merged == {"devs": ("SELECT", "USE_SCHEMA"), "sp": ("SELECT", "USE_SCHEMA")}
    assert merge_grants({}, None, ("X",)) == {}
