"""The deployment files in deploy/: they parse, and they are checked offline against their schemas.

- every YAML file parses;
- ``dagster.yaml`` passes Dagster's own instance-config validation and carries the same
  concurrency block as the demo's instance (``pipeline.instance``) and the Helm values;
- ``compose.yaml``: the five services, the keys and the individual records only in the code
  location, nothing private in the dashboards, the webserver or the daemon;
- ``helm/values.yaml`` against the Dagster chart's ``values.schema.json`` (vendored; see
  deploy/helm/VENDORED.md) with ``jsonschema``;
- ``k8s/*.yaml`` against the Kubernetes JSON schemas bundled in ``kubernetes-validate`` (strict:
  an unknown field fails);
- the Dockerfile, by a few structural rules (no linter binary is installable offline).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.37.0"
SERVICES = {"postgres", "code-location", "dagster-webserver", "dagster-daemon", "dashboards"}
PRIVATE_VOLUMES = {"wellbeing-keys", "wellbeing-shards", "wellbeing-landing", "wellbeing-archive"}
KEY_VARIABLES = {"WELLBEING_KEY_DIR", "WELLBEING_RAW_KEY", "WELLBEING_PSEUDONYM_KEY"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})


def test_the_deployment_files_are_there() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file()}
    assert {
        "Dockerfile",
        "compose.yaml",
        "dagster.yaml",
        "workspace.yaml",
        "helm/values.yaml",
        "helm/values.schema.json",
        "k8s/dashboards.yaml",
    } <= names


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


# --- the Dagster instance -------------------------------------------------------------------------


def test_dagster_yaml_is_a_valid_instance_config_with_the_per_customer_limit(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    from pipeline.instance import CUSTOMER_RUN_TAG, concurrency_yaml

    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    config, _ = dagster_instance_config(str(tmp_path))  # Dagster's own schema; raises on any error
    assert set(config["storage"]) == {"postgres"}
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # from the environment, never in the file
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    [limit] = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limit == {"key": CUSTOMER_RUN_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    demo = yaml.safe_load(concurrency_yaml())["concurrency"]
    for block in (
        config["concurrency"],
        _load(DEPLOY / "helm" / "values.yaml")["additionalInstanceConfig"]["concurrency"],
    ):
        assert block["pools"] == demo["pools"]
        assert block["runs"]["tag_concurrency_limits"] == demo["runs"]["tag_concurrency_limits"]


def test_the_demo_instance_is_valid_too(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    from pipeline.instance import DAGSTER_YAML

    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["default_limit"] == 1


# --- compose --------------------------------------------------------------------------------------


def _volumes(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-form volume entries (the compose file uses only those: type, source, target)."""
    entries = service.get("volumes", [])
    assert all(isinstance(v, dict) for v in entries), "use the long volume syntax"
    return entries


def test_compose_services_and_who_mounts_what() -> None:
    compose = _load(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert set(services) == SERVICES
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in _volumes(service):
            if volume["type"] == "volume":
                assert volume["source"] in declared, (name, volume)
            if volume["type"] == "bind":  # only our own config files, read-only
                assert volume["source"] in {"./dagster.yaml", "./workspace.yaml"} and volume["read_only"], (
                    name,
                    volume,
                )
        for key, value in service.get("environment", {}).items():  # secrets only from the host's .env
            if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$", key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), (name, key)

    # the keys and the individual records: the code location only (the runs are its processes)
    for name, service in services.items():
        sources = {v.get("source") for v in _volumes(service)}
        env = set(service.get("environment", {}))
        if name == "code-location":
            assert PRIVATE_VOLUMES <= sources and "WELLBEING_KEY_DIR" in env
        else:
            assert not sources & PRIVATE_VOLUMES, name
            assert not env & KEY_VARIABLES, name

    dashboards = services["dashboards"]
    assert {v["source"] for v in _volumes(dashboards)} == {"wellbeing-shared"}
    assert set(dashboards["environment"]) == {"WELLBEING_HOME"}  # no Dagster or database credentials
    assert dashboards["command"][:2] == ["wellbeing", "dashboards"]
    for name in ("dagster-webserver", "dagster-daemon"):  # Dagster only: no data folder at all
        assert not any(v["target"].startswith("/data") for v in _volumes(services[name])), name

    command = services["code-location"]["command"]
    assert command[:3] == ["dagster", "code-server", "start"] and "pipeline.definitions" in command
    [location] = _load(DEPLOY / "workspace.yaml")["load_from"]
    assert location["grpc_server"]["host"] == "code-location"
    assert str(location["grpc_server"]["port"]) == command[command.index("-p") + 1]
    # published ports on loopback only (a TLS proxy in front)
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


# --- Helm values against the chart's schema -------------------------------------------------------


def _override_schema() -> dict[str, Any]:
    """The chart's schema without ``required`` (Helm checks the merged values; ours are overrides)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "required"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(json.loads((DEPLOY / "helm" / "values.schema.json").read_text(encoding="utf-8")))


class _AnySchema(dict):  # type: ignore[type-arg]
    """A remote document we cannot fetch offline: every JSON pointer into it is the empty schema."""

    def __getitem__(self, key: str) -> Any:
        return _AnySchema()


def _helm_validator() -> Any:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    def retrieve(uri: str) -> Resource:
        # The chart's schema points at kubernetesjsonschema.dev for pod specs, probes, volumes...;
        # offline they accept anything (the manifests in deploy/k8s are checked strictly below).
        assert uri.startswith("https://kubernetesjsonschema.dev/"), uri
        return Resource(contents=_AnySchema(), specification=DRAFT7)

    return jsonschema.Draft7Validator(_override_schema(), registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def test_helm_values_match_the_dagster_chart_schema() -> None:
    values = _load(DEPLOY / "helm" / "values.yaml")
    errors = sorted(_helm_validator().iter_errors(values), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]  # runs get the location's secrets
    assert {s["name"] for s in deployment["envSecrets"]} >= {"wellbeing-keys"}
    # the keys go to the code location and its runs only, not to the webserver or the daemon
    text = json.dumps({k: v for k, v in values.items() if k != "dagster-user-deployments"})
    assert "wellbeing-keys" not in text and "WELLBEING_RAW_KEY" not in text


def test_helm_runs_use_the_shard_bucket_a_scratch_copy_and_a_lasting_key_share_folder() -> None:
    """Each run pod: shards from the bucket into a pod-local emptyDir; key shares on their own claim."""
    from pipeline.settings import check_bucket_url

    [deployment] = _load(DEPLOY / "helm" / "values.yaml")["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    check_bucket_url(env["WELLBEING_SHARD_BUCKET"])  # what the pipeline accepts
    mounts = {m["mountPath"]: m["name"] for m in deployment["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    assert "emptyDir" in volumes[mounts[env["WELLBEING_HOME"] + "/shards"]]  # the pod's own copy
    key_mount = next(p for p in mounts if env["WELLBEING_KEY_DIR"].startswith(p + "/"))
    claim = volumes[mounts[key_mount]]["persistentVolumeClaim"]["claimName"]
    assert claim == "wellbeing-key-shares"  # outlives the pod; not the shared volume the dashboards mount
    claims = {d["metadata"]["name"] for _, d in _k8s_documents() if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {"wellbeing-shared", "wellbeing-key-shares"}


def test_the_helm_check_catches_a_misspelt_key() -> None:
    values = _load(DEPLOY / "helm" / "values.yaml")
    broken = copy.deepcopy(values)
    broken["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurentRuns"] = 4
    broken["runLauncher"]["type"] = "K8sLauncher"
    messages = " ".join(e.message for e in _helm_validator().iter_errors(broken))
    assert "maxConcurentRuns" in messages and "K8sLauncher" in messages


# --- Kubernetes manifests -------------------------------------------------------------------------


def _k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


def test_kubernetes_manifests_validate_against_the_bundled_schemas() -> None:
    import kubernetes_validate

    kinds = set()
    for _name, doc in _k8s_documents():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError
        kinds.add((doc["kind"], doc["metadata"]["name"]))
    assert {("Deployment", "wellbeing-dashboards"), ("Service", "wellbeing-dashboards")} <= kinds


def test_the_kubernetes_check_catches_an_unknown_field() -> None:
    import kubernetes_validate

    _, deployment = next((n, d) for n, d in _k8s_documents() if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_dashboards_pods_get_no_secret_and_only_the_shared_volume() -> None:
    [deployment] = [d for _, d in _k8s_documents() if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert not any("secret" in v for v in pod["volumes"])
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"wellbeing-shared"}
    for container in pod["containers"]:
        assert not {e["name"] for e in container.get("env", [])} & KEY_VARIABLES
        assert "envFrom" not in container
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_rules() -> None:
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    instructions = [line.split()[0].upper() for line in lines]
    assert instructions[0] == "FROM" and re.match(r"FROM python:3\.12-slim", lines[0])
    users = [line for line in lines if line.upper().startswith("USER ")]
    assert users and not users[-1].split()[1].startswith(("root", "0"))  # runs as the non-root user
    assert instructions.index("USER") < instructions.index("CMD")
    copies = [line for line in lines if line.upper().startswith(("COPY", "ADD"))]
    assert not any(re.search(r"\.wellbeing|keys|\.key\b|\.duckdb|\.venv|\btests\b| \. ", c) for c in copies), copies
    assert not any(line.upper().startswith("ADD") for line in lines)  # COPY only (no remote fetches)
    env = " ".join(line for line in lines if line.upper().startswith(("ENV", "ARG")))
    assert not re.search(r"KEY|PASSWORD|SECRET|TOKEN", env.replace("WELLBEING_HOME", "")), env
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[[line.strip() for line in ignore].index("*")] == "*"  # everything excluded first
    assert {"**/*.duckdb", "**/*.key", "**/.wellbeing"} <= set(ignore)


def test_the_demo_instance_file_is_upgraded_only_when_the_pipeline_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.instance import DAGSTER_YAML, ensure_dagster_home
    from pipeline.settings import Settings

    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # ensure_dagster_home sets it; restored after the test
    settings = Settings.from_env(tmp_path / "home")
    config = ensure_dagster_home(settings) / "dagster.yaml"
    assert config.read_text(encoding="utf-8") == DAGSTER_YAML
    old = "# Written by the wellbeing pipeline. DuckDB allows one writer per file.\nconcurrency:\n  pools:\n    default_limit: 1\n"
    config.write_text(old, encoding="utf-8")  # the previous version (one global writer pool)
    ensure_dagster_home(settings)
    assert config.read_text(encoding="utf-8") == DAGSTER_YAML
    own = "# my instance\ntelemetry:\n  enabled: false\n"
    config.write_text(own, encoding="utf-8")
    ensure_dagster_home(settings)
    assert config.read_text(encoding="utf-8") == own
