"""Unity Catalog: the catalog (referenced or created), the schemas and volumes the seeds use, grants, UC tags.

Grants are a deliberate choice per securable (see README, "Grants"):
- a catalog this stack creates, and every schema (always created here), get authoritative `Grants`: this stack
  owns access to them, so a grant added by hand is removed on the next `pulumi up`;
- a referenced catalog (usually shared, like main) gets one `Grant` per principal listed in the stack file, and
  nothing else: a `Grant` is authoritative for its principal (it sets exactly the listed privileges of that
  principal, revoking any others it held there, and deleting it revokes them all), so the stack manages only
  principals the stack file names, never one implicitly (not even the jobs' identity: what that needs on a
  referenced catalog is a prerequisite, see infra.platform.prerequisites), and nobody else's access is touched.

Data is never destroyed by accident: the catalog (if created), schemas and volumes are always
`retain_on_delete` (removing them from the program leaves them in the workspace), and `protect` when the
stack says so (default in production). This module reads no config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_databricks as db

from infra.naming import logical, slug
from infra.settings import CatalogSettings


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    comment: str


@dataclass(frozen=True)
class SchemaSpec:
    """A schema to create, with its volumes (role -> spec) and its grants (principal -> privileges)."""

    key: str  # logical key: 'platform', 'agent'
    name: str
    comment: str
    volumes: Mapping[str, VolumeSpec]
    grants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    storage_root: str | None = None


@dataclass(frozen=True)
class UnityCatalogArgs:
    catalog: CatalogSettings
    catalog_grants: Mapping[str, tuple[str, ...]]
    schemas: tuple[SchemaSpec, ...]
    tags: Mapping[str, str]
    protect: bool


def merge_grants(
    configured: Mapping[str, tuple[str, ...]], principal: str | None, privileges: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """Configured grants plus `privileges` for `principal` (the identity the jobs run as), each list sorted
    so that the order in the stack file never shows up as a diff."""
    merged = {p: set(privs) for p, privs in configured.items()}
    if principal is not None:
        merged.setdefault(principal, set()).update(privileges)
    return {p: tuple(sorted(privs)) for p, privs in sorted(merged.items())}


def tag_entity(
    entity_type: str, entity_name: pulumi.Input[str], tags: Mapping[str, str], owner: pulumi.Resource, prefix: str
) -> None:
    """One UC tag assignment per tag, parented to the tagged resource. Tags are never protected (a tag removed
    from the stack must be removable), unlike the data they label."""
    for key, value in sorted(tags.items()):
        db.EntityTagAssignment(
            logical(prefix, "tag", key),
            entity_type=entity_type,
            entity_name=entity_name,
            tag_key=key,
            tag_value=value,
            opts=pulumi.ResourceOptions(parent=owner, protect=False),
        )


class DataSchema(pulumi.ComponentResource):
    """A schema, its volumes, its authoritative grants and UC tags.

    Children: `Schema` <key>, one `Volume` <key>-<role> per volume, `Grants` <key>-grants (only when grants are
    configured), `EntityTagAssignment`s under the schema and each volume. Schema and volumes are
    retain_on_delete, and protect when asked. Renaming a schema or volume replaces it (a new, empty one):
    `protect` turns that into an error instead.
    """

    name: pulumi.Output[str]
    """The schema's name (depending on it orders a resource after the schema)."""
    full_name: pulumi.Output[str]
    """'<catalog>.<schema>'."""
    volume_paths: dict[str, pulumi.Output[str]]
    """Volume role -> '/Volumes/<catalog>/<schema>/<volume>'."""

    def __init__(
        self,
        spec: SchemaSpec,
        catalog_name: pulumi.Input[str],
        tags: Mapping[str, str],
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-platform:catalog:DataSchema", spec.key, None, opts)
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=protect)
        schema = db.Schema(
            spec.key,
            catalog_name=catalog_name,
            name=spec.name,
            comment=spec.comment,
            storage_root=spec.storage_root,
            opts=data,
        )
        self.name = schema.name
        self.full_name = schema.id
        tag_entity("schemas", schema.id, tags, schema, spec.key)
        if spec.grants:
            db.Grants(
                f"{spec.key}-grants",
                schema=schema.id,
                grants=[db.GrantsGrantArgs(principal=p, privileges=list(privs)) for p, privs in spec.grants.items()],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.volume_paths = {}
        for role, volume in sorted(spec.volumes.items()):
            resource = db.Volume(
                logical(spec.key, role),
                catalog_name=catalog_name,
                schema_name=schema.name,
                name=volume.name,
                volume_type="MANAGED",
                comment=volume.comment,
                opts=data,
            )
            tag_entity("volumes", resource.id, tags, resource, logical(spec.key, role))
            self.volume_paths[role] = resource.volume_path
        self.register_outputs({"full_name": self.full_name, "volume_paths": self.volume_paths})


class UnityCatalog(pulumi.ComponentResource):
    """The catalog and every schema of the platform.

    Children: either a created `Catalog` 'catalog' (retain_on_delete; protect when asked) with authoritative
    `Grants` 'catalog-grants', or a lookup of the existing catalog (fails the preview if it does not exist or is
    not visible) with one `Grant` 'catalog-grant-<principal>' per listed principal (authoritative for that
    principal); then one `DataSchema` per schema.
    """

    catalog_name: pulumi.Output[str]
    schemas: dict[str, DataSchema]
    """Schema key -> its component (`.name`, `.full_name`)."""
    schema_names: dict[str, pulumi.Output[str]]
    """Schema key -> full name."""
    volume_paths: dict[str, pulumi.Output[str]]
    """Volume role -> /Volumes path, across all schemas."""

    def __init__(self, name: str, args: UnityCatalogArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:catalog:UnityCatalog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cat = args.catalog
        if cat.create:
            catalog = db.Catalog(
                "catalog",
                name=cat.name,
                comment=cat.comment,
                storage_root=cat.storage_root,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect),
            )
            self.catalog_name = catalog.name
            tag_entity("catalogs", catalog.name, args.tags, catalog, "catalog")
            if args.catalog_grants:
                db.Grants(
                    "catalog-grants",
                    catalog=catalog.name,
                    grants=[
                        db.GrantsGrantArgs(principal=p, privileges=list(privs))
                        for p, privs in args.catalog_grants.items()
                    ],
                    opts=child,
                )
        else:
            existing = db.get_catalog_output(name=cat.name, opts=pulumi.InvokeOutputOptions(parent=self))
            self.catalog_name = existing.name
            for principal, privileges in args.catalog_grants.items():
                db.Grant(
                    f"catalog-grant-{slug(principal)}",
                    catalog=self.catalog_name,
                    principal=principal,
                    privileges=list(privileges),
                    opts=child,
                )
        self.schemas = {s.key: DataSchema(s, self.catalog_name, args.tags, args.protect, child) for s in args.schemas}
        self.schema_names = {key: ds.full_name for key, ds in self.schemas.items()}
        self.volume_paths = {role: path for ds in self.schemas.values() for role, path in ds.volume_paths.items()}
        self.register_outputs(
            {"catalog_name": self.catalog_name, "schema_names": self.schema_names, "volume_paths": self.volume_paths}
        )
