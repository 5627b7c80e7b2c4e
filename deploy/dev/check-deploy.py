#!/usr/bin/python3
"""Static checks of alertd's deploy recipes, for CI (no container engine or cluster runs there).

  check-deploy.py --binary PREFIX/bin/alertd

- deploy/docker/Dockerfile: every package of both stages resolves with apt-cache; the runtime
  stage installs a Debian package for every library the installed binary links against
  directly; a non-root USER, a HEALTHCHECK, and the files the build copies exist.
- deploy/compose/compose.yaml: parses; every service has an image or build; what they depend on
  and mount exists; alertd's variables are real settings; Prometheus scrapes alertd where its
  ALERTD_HTTP_ADDRESS serves and loads deploy/monitoring/alertd-rules.yml, and Grafana is
  provisioned with that Prometheus and deploy/monitoring/alertd-dashboard.json.
- deploy/kubernetes/alertd-sidecar.yaml: parses; the alertd container has liveness, readiness
  and startup probes on the port its ALERTD_HTTP_ADDRESS names, runs as the image's non-root
  user with a read-only root file system, and sets only real settings.
- deploy/systemd/alertd.env: only real settings.

The real settings are the variables docs/configuration.md documents (a test keeps that table
complete). Exits 1 naming every problem found.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def known_settings():
    text = open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    names = set(re.findall(r"^\| `(ALERTD_[A-Z_]+)` \|", text, re.M))
    if len(names) < 20:
        problem("docs/configuration.md", f"only {len(names)} settings found in its table")
    return names | {name + "_FILE" for name in names}


def check_variables(where, names, settings):
    for name in names:
        if name.startswith("ALERTD_") and name not in settings:
            problem(where, f"{name} is not a setting of alertd (docs/configuration.md)")


def apt_resolves(package):
    result = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    return result.returncode == 0 and f"Package: {package}" in result.stdout


def dockerfile_stages(path):
    """Each stage's apt-get install packages, and the Dockerfile's instructions (continuations joined)."""
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    stages = []
    for instruction in instructions:
        if instruction.upper().startswith("FROM "):
            stages.append({"from": instruction, "packages": [], "instructions": []})
        elif stages:
            stages[-1]["instructions"].append(instruction)
            match = re.search(r"apt-get install ([^&;]*)", instruction)
            if match:
                stages[-1]["packages"] += [word for word in match.group(1).split() if not word.startswith("-")]
    return stages


def linked_packages(binary):
    """The Debian package of each library `binary` names as NEEDED."""
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    libraries = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    packages = {}
    for library in libraries:
        match = re.search(r"^\s+" + re.escape(library) + r" \(.*x86-64.*\) => (\S+)$", cache, re.M) or \
            re.search(r"^\s+" + re.escape(library) + r" .*=> (\S+)$", cache, re.M)
        if not match:
            problem(binary, f"links {library}, which this machine does not have")
            continue
        real = os.path.realpath(match.group(1))
        owner = None
        for candidate in {real, real.replace("/usr/lib/", "/lib/", 1), match.group(1)}:
            result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if result.returncode == 0:
                owner = result.stdout.split(":")[0]
                break
        if owner is None:
            problem(binary, f"no Debian package owns {library} ({real})")
        else:
            packages[library] = owner
    return packages


def check_dockerfile(binary):
    where = "deploy/docker/Dockerfile"
    stages = dockerfile_stages(os.path.join(ROOT, where))
    if len(stages) != 2:
        problem(where, f"expected two stages (build, runtime), found {len(stages)}")
        return None
    build, runtime = stages
    for stage in stages:
        for package in stage["packages"]:
            if not apt_resolves(package):
                problem(where, f"apt-cache does not know the package {package}")
    # What the build stage installs is what the package's manifest asks for.
    manifest = open(os.path.join(ROOT, "Package.swift"), encoding="utf-8").read()
    for package in re.findall(r'\.apt\(\["([^"]+)"\]\)', manifest):
        if package not in build["packages"]:
            problem(where, f"the build stage does not install {package}, which Package.swift needs")
    # Base-image libraries: in every Debian image (priority required/important).
    base = {"libc6", "libgcc-s1", "libstdc++6"}
    for library, package in linked_packages(binary).items():
        if package not in runtime["packages"] and package not in base:
            problem(where, f"alertd links {library} from {package}, which the runtime stage does not install")
    for required in ["libpq5", "libcurl4", "libesmtp6", "ca-certificates"]:
        if required not in runtime["packages"]:
            problem(where, f"the runtime stage does not install {required}")
    users = [i.split()[1] for i in runtime["instructions"] if i.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problem(where, "the runtime stage does not switch to a non-root USER")
    if not any(i.upper().startswith("HEALTHCHECK ") and "alertd" in i and "health" in i for i in runtime["instructions"]):
        problem(where, "no HEALTHCHECK running alertd health")
    if not any(i.startswith("COPY --from=") for i in runtime["instructions"]):
        problem(where, "the runtime stage copies nothing from the build stage")
    if not any("deploy/install.sh" in i for i in build["instructions"]):
        problem(where, "the build stage does not run deploy/install.sh")
    return users[-1].split(":")[0] if users else None


def check_compose(settings):
    where = "deploy/compose/compose.yaml"
    directory = os.path.join(ROOT, "deploy", "compose")
    document = yaml.safe_load(open(os.path.join(directory, "compose.yaml"), encoding="utf-8"))
    services = document.get("services") or {}
    for needed in ["db", "alertd", "mail", "receiver", "prometheus", "grafana"]:
        if needed not in services:
            problem(where, f"no service {needed}")
    if "alertd" in services:
        alertd = services["alertd"]
        environment = alertd.get("environment") or {}
        check_stop_timeout(where, seconds(alertd.get("stop_grace_period", "10s")), environment.get("ALERTD_SHUTDOWN_GRACE") if isinstance(environment, dict) else None)
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problem(where, f"service {name} has neither image nor build")
        for dependency in service.get("depends_on") or {}:
            if dependency not in services:
                problem(where, f"service {name} depends on {dependency}, which is not a service")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith((".", "/")) and not os.path.exists(os.path.join(directory, source)):
                problem(where, f"service {name} mounts {source}, which does not exist")
        build = service.get("build")
        if isinstance(build, dict):
            context = os.path.join(directory, build.get("context", "."))
            if not os.path.exists(os.path.join(context, build.get("dockerfile", "Dockerfile"))):
                problem(where, f"service {name} builds from a Dockerfile that does not exist")
        environment = service.get("environment") or {}
        names = environment.keys() if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
        check_variables(f"{where} ({name})", names, settings)
    alertd = services.get("alertd") or {}
    if "healthcheck" not in alertd:
        problem(where, "the alertd service has no healthcheck")
    check_compose_monitoring(where, directory, services)


def mounts(service):
    """A service's bind mounts: the path inside the container -> the file on the host."""
    found = {}
    for volume in service.get("volumes") or []:
        parts = volume.split(":")
        if len(parts) >= 2 and parts[0].startswith((".", "/")):
            found[parts[1]] = parts[0]
    return found


def check_compose_monitoring(where, directory, services):
    for needed in ["prometheus", "grafana"]:
        if needed not in services:
            problem(where, f"no service {needed} (deploy/monitoring's rules and dashboard)")
            return
    environment = services["alertd"].get("environment") or {}
    port = str(environment.get("ALERTD_HTTP_ADDRESS", "")).rsplit(":", 1)[-1]
    prometheus = mounts(services["prometheus"])
    config_path = prometheus.get("/etc/prometheus/prometheus.yml")
    if config_path is None:
        problem(where, "prometheus: no configuration mounted at /etc/prometheus/prometheus.yml")
        return
    config = yaml.safe_load(open(os.path.join(directory, config_path), encoding="utf-8"))
    targets = [t for job in config.get("scrape_configs") or [] if job.get("job_name") == "alertd"
               for static in job.get("static_configs") or [] for t in static.get("targets") or []]
    if f"alertd:{port}" not in targets:
        problem(where, f"prometheus: no job \"alertd\" scraping alertd:{port}, where ALERTD_HTTP_ADDRESS serves")
    for rules in config.get("rule_files") or []:
        source = prometheus.get(rules)
        if source is None or os.path.normpath(os.path.join(directory, source)) != os.path.join(ROOT, "deploy", "monitoring", "alertd-rules.yml"):
            problem(where, f"prometheus: the rule file {rules} is not deploy/monitoring/alertd-rules.yml mounted")
    if not config.get("rule_files"):
        problem(where, "prometheus: no rule_files")
    grafana = mounts(services["grafana"])
    provisioned = {inside: os.path.normpath(os.path.join(directory, source)) for inside, source in grafana.items()}
    datasources = [p for inside, p in provisioned.items() if inside.startswith("/etc/grafana/provisioning/datasources/")]
    providers = [p for inside, p in provisioned.items() if inside.startswith("/etc/grafana/provisioning/dashboards/")]
    if not any(d.get("type") == "prometheus" and d.get("url") == "http://prometheus:9090"
               for path in datasources for d in (yaml.safe_load(open(path, encoding="utf-8")) or {}).get("datasources") or []):
        problem(where, "grafana: no Prometheus data source at http://prometheus:9090 provisioned")
    folders = [p.get("options", {}).get("path") for path in providers for p in (yaml.safe_load(open(path, encoding="utf-8")) or {}).get("providers") or []]
    dashboard = os.path.join(ROOT, "deploy", "monitoring", "alertd-dashboard.json")
    if not any(inside.startswith(f"{folder}/") and source == dashboard for folder in folders if folder for inside, source in provisioned.items()):
        problem(where, "grafana: deploy/monitoring/alertd-dashboard.json is not mounted in a provisioned dashboards folder")

    document = json.load(open(dashboard, encoding="utf-8"))
    variables = {v.get("name"): v.get("type") for v in (document.get("templating") or {}).get("list") or []}
    if variables.get("datasource") != "datasource" or variables.get("instance") != "query":
        problem("deploy/monitoring/alertd-dashboard.json", "no datasource variable or no instance variable")
    if (document.get("schemaVersion") or 0) < 36:
        problem("deploy/monitoring/alertd-dashboard.json", "a schemaVersion older than Grafana 9's")


def check_kubernetes(settings, image_user):
    where = "deploy/kubernetes/alertd-sidecar.yaml"
    documents = [d for d in yaml.safe_load_all(open(os.path.join(ROOT, where), encoding="utf-8")) if d]
    pods = [d["spec"]["template"]["spec"] for d in documents if d.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")]
    if not pods:
        problem(where, "no Deployment")
        return
    for pod in pods:
        containers = {c["name"]: c for c in pod.get("containers", [])}
        alertd = containers.get("alertd")
        if alertd is None:
            problem(where, "no container named alertd")
            continue
        if len(containers) < 2:
            problem(where, "alertd is not a sidecar: the pod has no other container")
        env = {e["name"]: e.get("value") for e in alertd.get("env", [])}
        check_variables(where, env.keys(), settings)
        address = env.get("ALERTD_HTTP_ADDRESS") or ""
        port = int(address.rsplit(":", 1)[1]) if ":" in address else None
        if port is None:
            problem(where, "alertd has no ALERTD_HTTP_ADDRESS: its probes have nothing to ask")
        ports = {p.get("name"): p["containerPort"] for p in alertd.get("ports", [])}
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"]:
            spec = alertd.get(probe)
            if not spec:
                problem(where, f"alertd has no {probe}")
                continue
            if "httpGet" in spec:
                target = spec["httpGet"]["port"]
                target = ports.get(target, target)
                if target != port:
                    problem(where, f"{probe} asks port {target}, but alertd serves on {port}")
                if spec["httpGet"]["path"] not in ("/healthz", "/readyz"):
                    problem(where, f"{probe} asks {spec['httpGet']['path']}, which alertd does not serve")
            elif "exec" in spec:
                if spec["exec"]["command"][:2] != ["alertd", "health"]:
                    problem(where, f"{probe} runs {spec['exec']['command']}, not alertd health")
            else:
                problem(where, f"{probe} is neither httpGet nor exec")
        security = alertd.get("securityContext", {})
        if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation") is not False:
            problem(where, "alertd's container must have a read-only root file system and no privilege escalation")
        if "ALL" not in (security.get("capabilities", {}).get("drop") or []):
            problem(where, "alertd's container must drop every capability")
        if not pod.get("securityContext", {}).get("runAsNonRoot") and not security.get("runAsNonRoot"):
            problem(where, "runAsNonRoot is not set")
        if image_user and str(security.get("runAsUser")) != image_user:
            problem(where, f"alertd runs as user {security.get('runAsUser')}, the image's user is {image_user}")
        check_stop_timeout(where, pod.get("terminationGracePeriodSeconds", 30), env.get("ALERTD_SHUTDOWN_GRACE"))
        mounted = {m["name"] for m in alertd.get("volumeMounts", [])}
        secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
        if not mounted & secret_volumes:
            problem(where, "alertd mounts no secret volume for its _FILE settings")
        group = pod.get("securityContext", {}).get("fsGroup")
        if secret_volumes and str(group) != (image_user or str(group)):
            problem(where, f"fsGroup {group} must be the image's group ({image_user}) for alertd to read its secret files")


# alertd is gone ALERTD_SHUTDOWN_GRACE + 6 s after SIGTERM at the latest (AlertdServices.shutdownBound);
# a supervisor that kills it sooner cuts its last records short.
SHUTDOWN_BOUND_PAST_GRACE = 6
DEFAULT_GRACE = 20


def seconds(text):
    match = re.fullmatch(r"\s*(\d+)\s*s?\s*", str(text))
    return int(match.group(1)) if match else None


def check_stop_timeout(where, timeout, grace):
    bound = (seconds(grace) if grace else DEFAULT_GRACE) + SHUTDOWN_BOUND_PAST_GRACE
    if timeout is None:
        problem(where, "no stop timeout found")
    elif timeout <= bound:
        problem(where, f"the stop timeout ({timeout} s) is not above alertd's shutdown bound ({bound} s: ALERTD_SHUTDOWN_GRACE + {SHUTDOWN_BOUND_PAST_GRACE} s)")


def check_env_file(settings):
    where = "deploy/systemd/alertd.env"
    names = []
    for line in open(os.path.join(ROOT, where), encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.split("=", 1)[0])
    check_variables(where, names, settings)
    unit = open(os.path.join(ROOT, "deploy", "systemd", "alertd.service"), encoding="utf-8").read()
    check_variables("deploy/systemd/alertd.service", re.findall(r"Environment=(ALERTD_[A-Z_]+)=", unit), settings)
    env_text = open(os.path.join(ROOT, where), encoding="utf-8").read()
    grace = re.search(r"^ALERTD_SHUTDOWN_GRACE=(\S+)", env_text, re.M)
    stop = re.search(r"^TimeoutStopSec=(\S+)", unit, re.M)
    check_stop_timeout("deploy/systemd/alertd.service", seconds(stop.group(1)) if stop else None, grace.group(1) if grace else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, help="alertd as deploy/install.sh installs it")
    args = parser.parse_args()
    settings = known_settings()
    image_user = check_dockerfile(args.binary)
    check_compose(settings)
    check_kubernetes(settings, image_user)
    check_env_file(settings)
    for line in problems:
        print(f"check-deploy: {line}", file=sys.stderr)
    if problems:
        return 1
    print("check-deploy: Dockerfile, compose.yaml, alertd-sidecar.yaml and the systemd files hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
