"""The agents' memory: a Lakebase (Autoscaling) Postgres project, its database and the app's role, registered in
Unity Catalog.

Resource types (pulumi-databricks 1.118.0, all Public Beta): `PostgresProject`, `PostgresBranch`,
`PostgresEndpoint`, `PostgresDatabase`, `PostgresRole`, `PostgresCatalog`. Not the `DatabaseInstance` family:
those are Lakebase Provisioned, now the legacy offering (no scale-to-zero, no branching), and the wheel's app
reads the Autoscaling endpoint (LAKEBASE_ENDPOINT) first.

- Every project gets a root branch `production` and its read-write endpoint `primary` implicitly: both are
  adopted (`replace_existing`) so the stack owns their settings: the branch never expires (protected in
  production), the endpoint is always on in production (`no_suspension`, the seed's "no cold start") and
  suspends when idle otherwise.
- Lakebase runs one change per branch at a time (its docs: "conflicting operations in progress"), so the
  endpoint, the database and the role are chained with depends_on.
- The database is owned by a role of its own (`<database>_owner`, no login); the app gets CONNECT and CREATE
  through its `postgres` app resource (CAN_CONNECT_AND_CREATE), which is enough to create, and so own, its
  schema and tables.
- Data is never destroyed by accident: project, branch, database, role and catalog are retain_on_delete
  (DATA_TYPES) and protected in production; the project is never purged on delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_databricks as db

from infra.systems.serving_platform.settings import MemorySettings

ROOT_BRANCH = "production"  # created with every project; a custom id is "available in later versions"
PRIMARY_ENDPOINT = "primary"  # the branch's implicit read-write endpoint


@dataclass(frozen=True)
class LakebaseMemoryArgs:
    settings: MemorySettings
    project_id: str
    """Physical id of the Lakebase project (lowercase letters, digits, hyphens)."""
    uc_catalog: str
    """The Unity Catalog catalog that registers the database."""
    always_on: bool
    tags: Mapping[str, str]
    protect: bool


class LakebaseMemory(pulumi.ComponentResource):
    """Children: `PostgresProject` <name>, its root `PostgresBranch` and read-write `PostgresEndpoint`
    (adopted), the database's owner `PostgresRole`, the `PostgresDatabase`, the `PostgresCatalog` registering it
    in UC and, once the app exists, the app's `PostgresRole` (`add_app_role`). All but the endpoint are retained,
    and protected when asked."""

    project_name: pulumi.Output[str]
    """projects/<id>."""
    branch_name: pulumi.Output[str]
    """projects/<id>/branches/production: the app's postgres resource."""
    endpoint_path: str
    """projects/<id>/branches/production/endpoints/primary (what the app's LAKEBASE_ENDPOINT holds)."""
    database_name: pulumi.Output[str]
    """projects/<id>/branches/production/databases/<database>: the app's postgres resource."""
    postgres_database: str
    uc_catalog: pulumi.Output[str]

    def __init__(self, name: str, args: LakebaseMemoryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:LakebaseMemory", name, None, opts)
        s = args.settings
        self._protect_data = args.protect
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect)
        if args.always_on:
            suspension: dict[str, object] = {"no_suspension": True}
        else:
            suspension = {"suspend_timeout_duration": f"{s.suspend_timeout_seconds}s"}
        project = db.PostgresProject(
            name,
            project_id=args.project_id,
            spec=db.PostgresProjectSpecArgs(
                display_name=f"{args.project_id}: agent memory (seed 001)",
                pg_version=s.pg_version,
                default_endpoint_settings=db.PostgresProjectSpecDefaultEndpointSettingsArgs(
                    autoscaling_limit_min_cu=s.min_cu, autoscaling_limit_max_cu=s.max_cu, **suspension
                ),
                custom_tags=[db.PostgresProjectSpecCustomTagArgs(key=k, value=v) for k, v in sorted(args.tags.items())],
            ),
            purge_on_delete=False,
            opts=data,
        )
        branch = db.PostgresBranch(
            f"{name}-branch",
            branch_id=ROOT_BRANCH,
            parent=project.name,
            spec=db.PostgresBranchSpecArgs(no_expiry=True, is_protected=args.protect),
            replace_existing=True,
            opts=data,
        )
        endpoint = db.PostgresEndpoint(
            f"{name}-endpoint",
            endpoint_id=PRIMARY_ENDPOINT,
            parent=branch.name,
            spec=db.PostgresEndpointSpecArgs(
                endpoint_type="ENDPOINT_TYPE_READ_WRITE",
                autoscaling_limit_min_cu=s.min_cu,
                autoscaling_limit_max_cu=s.max_cu,
                **suspension,
            ),
            replace_existing=True,
            # Compute, not data: removing it from the program only drops it from state (the branch owns it).
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The database's owner: a role of its own (no login), not a person, and not the app's role, which only
        # exists once the App (whose postgres resource names this database) does.
        owner = db.PostgresRole(
            f"{name}-owner",
            role_id=f"{s.database.replace('_', '-')}-owner",
            parent=branch.name,
            spec=db.PostgresRoleSpecArgs(postgres_role=f"{s.database}_owner"),
            opts=pulumi.ResourceOptions.merge(data, pulumi.ResourceOptions(depends_on=[endpoint])),
        )
        database = db.PostgresDatabase(
            f"{name}-database",
            database_id=s.database.replace("_", "-"),
            parent=branch.name,
            spec=db.PostgresDatabaseSpecArgs(postgres_database=s.database, role=owner.name),
            opts=data,
        )
        catalog = db.PostgresCatalog(
            f"{name}-catalog",
            catalog_id=args.uc_catalog,
            spec=db.PostgresCatalogSpecArgs(branch=branch.name, postgres_database=s.database),
            opts=pulumi.ResourceOptions.merge(data, pulumi.ResourceOptions(depends_on=[database])),
        )
        self._branch, self._database = branch, database
        self.project_name = project.name
        self.branch_name = branch.name
        self.endpoint_path = f"projects/{args.project_id}/branches/{ROOT_BRANCH}/endpoints/{PRIMARY_ENDPOINT}"
        self.database_name = database.name
        self.postgres_database = s.database
        self.uc_catalog = catalog.catalog_id.apply(lambda c: c or args.uc_catalog)
        self.register_outputs(
            {
                "project_name": self.project_name,
                "branch_name": self.branch_name,
                "database_name": self.database_name,
                "uc_catalog": self.uc_catalog,
            }
        )

    def add_app_role(self, name: str, client_id: pulumi.Input[str], after: pulumi.Resource) -> db.PostgresRole:
        """The app's Postgres role (its service principal, OAuth login). Databricks creates it when the app's
        postgres resource is added, so it is adopted (`replace_existing`) after the App (`after`) exists."""
        return db.PostgresRole(
            name,
            role_id=pulumi.Output.from_input(client_id).apply(lambda c: f"sp-{c}"),
            parent=self._branch.name,
            spec=db.PostgresRoleSpecArgs(
                identity_type="SERVICE_PRINCIPAL", postgres_role=client_id, auth_method="LAKEBASE_OAUTH_V1"
            ),
            replace_existing=True,
            opts=pulumi.ResourceOptions(
                parent=self, retain_on_delete=True, protect=self._protect_data, depends_on=[after, self._database]
            ),
        )
