"""The deployments, validated offline: Kubernetes schemas, kustomize, the compose specification, and the facts
that matter (every queue has a worker and an autoscaler on its list, GPUs in the gpu overlay, nobody runs as
root, no secret in the repository). Docker and a cluster are not available here; these are the checks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.stages import QUEUES, STAGES
from tests.conftest import REPO, need

MODEL_STAGES = {str(stage) for stage, spec in STAGES.items() if spec.batched}
K8S = REPO / "k8s"
K8S_VERSION = "1.32.0"
COMPOSE_SCHEMA = REPO / ".venv" / "compose-spec.json"  # fetched by `make install` (pinned npm package)
KEDA_KINDS = {
    "ScaledObject",
    "TriggerAuthentication",
}  # CRDs: no schema offline; their facts are checked below


def render(overlay: str, tmp_path: Path) -> list[dict]:
    """`kubectl kustomize` of a copy of k8s/, with the example secrets standing in for the real ones."""
    need(shutil.which("kubectl") is not None, "kubectl (for kustomize) is not installed")
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    shutil.copy(tree / "base" / "secrets.env.example", tree / "base" / "secrets.env")
    out = subprocess.run(
        ["kubectl", "kustomize", str(tree / overlay)], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(params=["base", "overlays/gpu"])
def rendered(request, tmp_path) -> list[dict]:
    return render(request.param, tmp_path)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(rendered) -> None:
    kinds = set()
    for doc in rendered:
        kinds.add(doc["kind"])
        if doc["kind"] in KEDA_KINDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # strict: no unknown fields either
    assert {"Deployment", "Job", "ConfigMap", "Secret", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert KEDA_KINDS <= kinds


def test_every_file_validates_on_its_own_and_the_kustomizations_reference_only_what_exists() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for ref in spec.get("resources", []) + [p["path"] for p in spec.get("patches", [])]:
            assert (kustomization.parent / ref).exists(), f"{kustomization}: {ref} does not exist"
        for gen in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
            for env in gen["envs"]:
                assert (kustomization.parent / env).exists() or (
                    kustomization.parent / f"{env}.example"
                ).exists()
    for path in (K8S / "base").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                doc
                and "apiVersion" in doc
                and doc["kind"] not in KEDA_KINDS
                and not doc["kind"].startswith("Kustom")
            ):
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_each_queue_has_a_worker_and_an_autoscaler_on_its_list(rendered) -> None:
    deployments, scalers = by_kind(rendered, "Deployment"), by_kind(rendered, "ScaledObject")
    for queue in QUEUES:
        package = queue
        workers = [
            d
            for d in deployments.values()
            if d["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["worker", package]
        ]
        assert len(workers) == 1, f"no single Deployment runs `recap worker {package}` for queue {queue}"
        name = workers[0]["metadata"]["name"]
        assert name == queue, f"the {queue} worker's Deployment is named {name!r}: one name per queue"
        [scaler] = [s for s in scalers.values() if s["spec"]["scaleTargetRef"]["name"] == name]
        [trigger] = scaler["spec"]["triggers"]
        assert (trigger["type"], trigger["metadata"]["listName"]) == ("redis", queue)
        auth = by_kind(rendered, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
        assert auth["spec"]["secretTargetRef"][0]["name"] in by_kind(rendered, "Secret")
    assert scalers["large"]["spec"]["minReplicaCount"] == 0  # scale to zero when nothing escalates


def test_workers_outlive_their_slowest_task_and_probe_their_own_node(rendered) -> None:
    config = next(iter(by_kind(rendered, "ConfigMap").values()))["data"]
    limit = int(config["RECAP_STAGE_TIME_LIMIT_S"])
    for name, deployment in by_kind(rendered, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        if container["command"][:2] != ["recap", "worker"]:
            continue
        assert pod["terminationGracePeriodSeconds"] > limit, name
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["recap", "ping", container["command"][2]]
        live = container["livenessProbe"]
        if name.endswith("model"):  # a solo worker answers only between batches: allow a whole batch
            assert live["periodSeconds"] * live["failureThreshold"] > limit
        assert {"requests", "limits"} <= set(container["resources"])


def test_the_gpu_overlay_gives_each_model_worker_a_gpu_and_only_there(tmp_path) -> None:
    for overlay, gpu in (("base", False), ("overlays/gpu", True)):
        deployments = by_kind(render(overlay, tmp_path / overlay), "Deployment")
        for name, deployment in deployments.items():
            pod = deployment["spec"]["template"]["spec"]
            limits = pod["containers"][0]["resources"]["limits"]
            wants = gpu and name in MODEL_STAGES
            assert ("nvidia.com/gpu" in limits) is wants, (overlay, name)
            if wants:
                assert limits["nvidia.com/gpu"] == 1 and pod["nodeSelector"]
                assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
                assert "cuda" in pod["containers"][0]["image"]


def test_nothing_runs_as_root(rendered) -> None:
    for doc in rendered:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
    dockerfile = (REPO / "services" / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) == 4
    for stage in stages:
        users = re.findall(r"^USER (\S+)", stage, flags=re.M)
        assert users and users[-1] not in ("root", "0", "0:0"), stage.splitlines()[0]


def test_only_recap_pods_and_keda_reach_the_datastores(rendered) -> None:
    policies = by_kind(rendered, "NetworkPolicy")
    clients = {
        d["metadata"]["name"]
        for d in rendered
        if d["kind"] in ("Deployment", "Job")
        and d["spec"]["template"]["metadata"]["labels"].get("recap.io/datastore-client") == "true"
    }
    assert clients == set(STAGES) | {"flower", "exporter", "migrate", "sweeper", "notify", "api"}
    for name, port in (("redis-clients", 6379), ("postgres-clients", 5432)):
        rule = policies[name]["spec"]["ingress"][0]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        assert rule["from"][0] == {"podSelector": {"matchLabels": {"recap.io/datastore-client": "true"}}}


def test_the_api_scales_on_cpu_behind_a_service_with_probes_a_budget_and_a_policy(rendered) -> None:
    api = by_kind(rendered, "Deployment")["api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["recap", "api"] and "recap-api" in container["image"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [port] = container["ports"]
    service = by_kind(rendered, "Service")["api"]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")["api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api" and hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert by_kind(rendered, "PodDisruptionBudget")["api"]["spec"]["minAvailable"] == 1
    [rule] = by_kind(rendered, "NetworkPolicy")["api-ingress"]["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": port["containerPort"]}]
    secrets = by_kind(rendered, "Secret")
    assert any("RECAP_SECRET_KEY" in secret["data"] for secret in secrets.values())  # one key for all pods


URL_PASSWORD = re.compile(r"://[^:/\s]+:([^@\s]+)@")
SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|basic_auth|api_key)['\"]?\s*[:=]\s*(\S*)")


def placeholder(value: str) -> bool:
    """A value that is no secret: empty, a variable reference, or an obvious placeholder."""
    value = value.strip("'\"{},")
    return not value or value.startswith("$") or "CHANGE_ME" in value or value in ("true", "false")


def test_no_secret_literal_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    )
    checked = 0
    for rel in tracked.stdout.split():
        path = REPO / rel
        if path.suffix in (".yaml", ".yml", ".env", ".example", ".toml") or path.name == "Dockerfile":
            checked += 1
            for line in path.read_text().splitlines():
                code = re.sub(r"\$\{[^}]*\}", "${VAR}", line.split(" #")[0])  # references are not values
                for value in [m.group(2) for m in SECRET_KEY.finditer(code)] + URL_PASSWORD.findall(code):
                    assert placeholder(value), f"{rel}: {line.strip()}"
    assert checked > 20
    ignored = (REPO / ".gitignore").read_text().split()
    assert ".env" in ignored and "k8s/base/secrets.env" in ignored


def test_docker_compose_follows_the_compose_specification() -> None:
    need(COMPOSE_SCHEMA.exists(), f"{COMPOSE_SCHEMA} is missing: run `make install`")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    jsonschema.validate(compose, json.loads(COMPOSE_SCHEMA.read_text()))
    services = compose["services"]
    assert set(services) >= {"redis", "postgres", "migrate", "flower"} | set(STAGES)  # a service per stage
    redis_command = services["redis"]["command"]
    assert "--appendonly yes" in redis_command and "--maxmemory-policy noeviction" in redis_command
    assert services["postgres"]["healthcheck"] and services["postgres"]["volumes"]
    for name in map(str, STAGES):
        assert services[name]["command"] == ["recap", "worker", name]
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for name in MODEL_STAGES:
        [device] = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
    assert "FLOWER_BASIC_AUTH" in json.dumps(services["flower"]["environment"])
    assert services["sweeper"]["command"] == ["recap", "sweeper"]
    assert services["notify"]["command"] == ["recap", "worker", "notify"]
    assert services["api"]["build"]["target"] == "api" and services["api"]["command"] == ["recap", "api"]
    assert "RECAP_SECRET_KEY" in json.dumps(services["api"]["environment"])
    # Every long-running process comes back after a crash, as a Deployment's pods do (`recap up` supervises).
    for name, service in services.items():
        assert service["restart"] == ("no" if name == "migrate" else "unless-stopped"), name


def test_the_cpu_override_swaps_the_model_image_and_drops_the_gpu_reservations() -> None:
    class ComposeLoader(yaml.SafeLoader):
        pass

    ComposeLoader.add_constructor("!reset", lambda loader, node: None)  # Compose's "remove this key"
    override = yaml.load((REPO / "docker-compose.cpu.yml").read_text(), Loader=ComposeLoader)
    assert set(override["services"]) == MODEL_STAGES
    for service in override["services"].values():
        assert service["build"]["target"] == "model-cpu" and service["deploy"] is None
        assert service["environment"]["RECAP_DEVICE"] == "cpu"
