"""Bring the seed repository (walmsles/serverless-observability) into the lab unchanged (issue #18).

Two steps the seed's own README does by hand or with tools the lab does not carry:

  requirements APP_DIR   what the seed's `make deps` does with Poetry (`poetry export --with=GROUP`
                         into services/GROUP/requirements.txt, files its .gitignore ignores), read
                         from its committed poetry.lock, so `sam build` packages Powertools, requests
                         and tenacity. No Poetry needed; nothing tracked in the seed changes.
  configure              what the seed's README "First Time Install" step 4 does in the console:
                         the courier API's invoke URL (+ /slow) into the SSM parameter
                         /sls-observe/delivery/endpoint and its API key's value into the secret
                         /sls-observe/delivery/api-key, both read from the deployed stack.

  endpoints              an endpoints file of the seed's two branches, each deployed into its own
                         account (`--account <topology>=444444444444`, once per branch,
                         each branch named as its topology), in the lab's contract
                         (lab_kernel/endpoints.schema.json): `LAB_ENDPOINTS_FILE=... make load`
                         then sends the lab's load profiles (`seed-code` is the seed's own
                         notify-perf-test.yml) to the seed's notify APIs.

  runtime-path           a folder of pythonX.Y links, the interpreters the lab runs each runtime on
                         (python3.9 from pyenv here), for `sam build`'s PATH.

  .venv/bin/python -m bootstrap.seed_app requirements /path/to/seed
  export PATH="$(.venv/bin/python -m bootstrap.seed_app runtime-path):$PATH"
  .venv/bin/python -m bootstrap.seed_app configure --stack-name sls-observe
  .venv/bin/python -m bootstrap.seed_app endpoints --account <storm topology>=444444444444 \
      --account <remedy topology>=555555555555 --out .lab/seed-endpoints.json

The endpoint and account come from the usual variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID); the
region is the seed's, ap-southeast-2 (its samconfig.toml deploys there whatever AWS_DEFAULT_REGION
says, and its delivery function reads the secret there), or --region.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

from lab_kernel import topologies as catalogue


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _dep_specs(spec) -> list[tuple[list[str], str | None]]:
    """A lock's dependency value: "1.0", {version, markers, extras, optional} or a list of them."""
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(([], None))
        elif not item.get("optional"):
            out.append((list(item.get("extras", [])), item.get("markers")))
    return out


def export_group(pyproject: dict, lock: dict, group: str, python: str = "3.9") -> list[str]:
    """`poetry export --without-hashes --with=GROUP`: main's and GROUP's dependencies, transitively,
    pinned to the lock's versions; dependencies whose markers exclude `python` are left out."""
    packages = {_norm(p["name"]): p for p in lock["package"]}
    poetry = pyproject["tool"]["poetry"]
    roots = dict(poetry.get("dependencies", {}))
    roots.update(poetry.get("group", {}).get(group, {}).get("dependencies", {}))
    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "aarch64", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "posix"}
    wanted: dict[str, None] = {}
    todo = [(name, extras, markers) for name, spec in roots.items() if name != "python"
            for extras, markers in _dep_specs(spec)]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, extras, markers = todo.pop()
        if markers and not Marker(markers).evaluate(env):
            continue
        key = (_norm(name), tuple(sorted(extras)))
        if key in seen:
            continue
        seen.add(key)
        package = packages.get(key[0])
        if package is None:
            raise SystemExit(f"[seed-app] {name} is not in poetry.lock: run `poetry lock` in the seed")
        wanted[key[0]] = None
        for dep, spec in package.get("dependencies", {}).items():
            todo += [(dep, e, m) for e, m in _dep_specs(spec)]
        for extra in extras:
            for requirement in package.get("extras", {}).get(extra, []):
                req = Requirement(requirement)  # "name (>=1,<2)": PEP 508 allows the parentheses
                todo.append((req.name, list(req.extras), str(req.marker) if req.marker else None))
    return sorted(f"{packages[n]['name']}=={packages[n]['version']}" for n in wanted)


def requirements(app_dir: Path) -> list[Path]:
    """One requirements.txt per services/GROUP folder whose name is a Poetry group, as make-deps.sh."""
    pyproject = tomllib.loads((app_dir / "pyproject.toml").read_text())
    lock = tomllib.loads((app_dir / "poetry.lock").read_text())
    groups = pyproject["tool"]["poetry"].get("group", {})
    written = []
    for folder in sorted((app_dir / "services").iterdir()):
        if not folder.is_dir() or folder.name == "__pycache__" or folder.name not in groups:
            continue
        lines = export_group(pyproject, lock, folder.name)
        if not lines:
            continue
        target = folder / "requirements.txt"
        target.write_text("".join(f"{line}\n" for line in lines))
        written.append(target)
        print(f"[seed-app] {target.relative_to(app_dir)}: {', '.join(lines)}")
    return written


def runtime_path(folder: Path) -> Path:
    """A folder of `pythonX.Y` links to the interpreters the lab's executor runs each runtime on, for
    PATH: `sam build` looks for the function's runtime there (a pyenv shim of a version that is not
    selected does not answer), and so builds on the Python the function will run on."""
    from lab_platform.executor.interpreters import served

    folder.mkdir(parents=True, exist_ok=True)
    for runtime, interpreter in served().items():
        link = folder / runtime
        if link.is_symlink() or link.exists():
            link.unlink()
        if interpreter is not None and not interpreter.substitute:
            link.symlink_to(interpreter.path)
    return folder


def configure(stack_name: str, api_logical_id: str, path: str, parameter: str, secret: str,
              region: str | None, account: str | None = None) -> tuple[str, str]:
    import boto3

    # the account is the access key id (LocalStack's convention): AWS_ACCESS_KEY_ID unless given
    keys = {"aws_access_key_id": account, "aws_secret_access_key": "test"} if account else {}
    session = boto3.session.Session(region_name=region, **keys)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    cfn = session.client("cloudformation", endpoint_url=endpoint)
    resources = {r["LogicalResourceId"]: r for r in
                 cfn.describe_stack_resources(StackName=stack_name)["StackResources"]}
    api_id = resources[api_logical_id]["PhysicalResourceId"]
    stage = next(r["PhysicalResourceId"] for k, r in resources.items()
                 if k.startswith(api_logical_id) and r["ResourceType"] == "AWS::ApiGateway::Stage")
    key_id = next(r["PhysicalResourceId"] for k, r in resources.items()
                  if k.startswith(api_logical_id) and r["ResourceType"] == "AWS::ApiGateway::ApiKey")
    apigw = session.client("apigateway", endpoint_url=endpoint)
    api_key = apigw.get_api_key(apiKey=key_id, includeValue=True)["value"]
    # The URL the delivery function reaches the courier at: LocalStack's path form of an invoke URL
    # (https://{api}.execute-api.{region}.amazonaws.com/{stage} on AWS), with LocalStack's URL as a
    # function sees it (compose mode: 4566 inside the container, whatever port the host maps).
    if endpoint:
        from bootstrap.provision import function_side_url
        from lab_kernel.settings import Settings

        base = endpoint.rstrip("/")
        url = f"{function_side_url(base, Settings.load())}/_aws/execute-api/{api_id}/{stage}{path}"
    else:
        base = f"https://{api_id}.execute-api.{session.region_name}.amazonaws.com"
        url = f"{base}/{stage}{path}"
    session.client("ssm", endpoint_url=endpoint).put_parameter(
        Name=parameter, Value=url, Type="String", Overwrite=True)
    session.client("secretsmanager", endpoint_url=endpoint).put_secret_value(
        SecretId=secret, SecretString=api_key)
    print(f"[seed-app] {parameter} = {url}")
    # The notify API (SAM's implicit ServerlessRestApi): the base URL the seed's artillery file
    # posts /notify to, given as `artillery run --target` (its config.target is the author's AWS API).
    if "ServerlessRestApi" in resources and endpoint:
        notify_id = resources["ServerlessRestApi"]["PhysicalResourceId"]
        notify_stage = next((r["PhysicalResourceId"] for k, r in resources.items()
                             if k.startswith("ServerlessRestApi")
                             and r["ResourceType"] == "AWS::ApiGateway::Stage"), "Prod")
        target = f"{base}/_aws/execute-api/{notify_id}/{notify_stage}"
        print(f"[seed-app] notify target (artillery --target): {target}")
    print(f"[seed-app] {secret} = the value of API key {key_id} ({api_logical_id}'s usage plan)")
    return url, api_key


# The seed's logical ids (template.yaml on both branches) by the role the lab's tools know them by
SEED_FUNCTIONS = {"notification": "NotificationFunction", "delivery": "DeliveryFunction", "courier": "SlowFunction"}


def _stage(resources: dict[str, dict], api_logical_id: str) -> str:
    return next((r["PhysicalResourceId"] for k, r in resources.items()
                 if k.startswith(api_logical_id) and r["ResourceType"] == "AWS::ApiGateway::Stage"), "Prod")


def topology_entry(cfn, lambda_client, sqs, endpoint: str, account: str, region: str,
                   api_logical_id: str = "TheApi", parameter: str = "/sls-observe/delivery/endpoint",
                   secret: str = "/sls-observe/delivery/api-key", stack_name: str = "sls-observe") -> dict:
    """One branch's stack as an endpoints.json topology: where its notify API, courier API,
    functions, log groups, queue and bus are. The seed has no DLQ, no on-failure destination and
    no courier table: those are null (its failed orders are lost, which the report counts)."""
    try:
        listed = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    except Exception as error:  # botocore's ClientError: the stack is not in this account/region
        raise SystemExit(f"[seed-app] no stack {stack_name} in account {account}, {region} ({error}): "
                         "deploy the branch there first (docs/SEED_APP.md)") from None
    resources = {r["LogicalResourceId"]: r for r in listed}
    missing = [k for k in ("ServerlessRestApi", api_logical_id, *SEED_FUNCTIONS.values()) if k not in resources]
    if missing:
        raise SystemExit(f"[seed-app] stack {stack_name} in account {account} has no {', '.join(missing)}: "
                         "is it the seed's template?")
    base = endpoint.rstrip("/")
    functions = {role: resources[logical]["PhysicalResourceId"] for role, logical in SEED_FUNCTIONS.items()}
    queues: dict[str, str | None] = {"delivery": None, "dlq": None, "on_failure": None}
    queue = next((r for r in resources.values() if r["ResourceType"] == "AWS::SQS::Queue"), None)
    if queue is not None:
        queues["delivery"] = queue["PhysicalResourceId"]  # an SQS queue's physical id is its URL
        redrive = sqs.get_queue_attributes(QueueUrl=queue["PhysicalResourceId"],
                                           AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        if redrive.get("RedrivePolicy"):
            dlq_arn = json.loads(redrive["RedrivePolicy"])["deadLetterTargetArn"]
            queues["dlq"] = sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])["QueueUrl"]
    try:
        config = lambda_client.get_function_event_invoke_config(FunctionName=functions["delivery"])
        arn = (config.get("DestinationConfig", {}).get("OnFailure") or {}).get("Destination", "")
        if arn.startswith("arn:aws:sqs:"):
            queues["on_failure"] = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
    except lambda_client.exceptions.ResourceNotFoundException:
        pass  # no EventInvokeConfig: AWS's defaults (2 retries, 6 hours), no destination
    bus = next((r["PhysicalResourceId"] for r in resources.values() if r["ResourceType"] == "AWS::Events::EventBus"), None)
    entry = {
        "account": account,
        "region": region,
        "localstack_url": base,
        "notify_url": f"{base}/_aws/execute-api/{resources['ServerlessRestApi']['PhysicalResourceId']}/"
                      f"{_stage(resources, 'ServerlessRestApi')}/notify",
        "courier_url": f"{base}/_aws/execute-api/{resources[api_logical_id]['PhysicalResourceId']}/"
                       f"{_stage(resources, api_logical_id)}/slow",
        "api_key_secret": secret,
        "endpoint_parameter": parameter,
        "queues": queues,
        "functions": functions,
        "log_groups": {role: f"/aws/lambda/{name}" for role, name in functions.items()},
        "deliveries_table": None,
    }
    if bus:
        entry["event_bus"] = bus
    return entry


def endpoints_file(accounts: dict[str, str], region: str, out: Path) -> dict:
    import boto3

    from bootstrap.provision import write_endpoints
    from lab_kernel.settings import Settings

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise SystemExit("[seed-app] set AWS_ENDPOINT_URL to the lab's LocalStack (e.g. http://127.0.0.1:4566)")
    settings = Settings.load()
    data: dict = {"localstack_url": endpoint.rstrip("/"), "prometheus_url": settings.prometheus_url,
                  "grafana_url": settings.grafana_url, "topologies": {}}
    for name, account in accounts.items():
        session = boto3.session.Session(region_name=region, aws_access_key_id=account, aws_secret_access_key="test")
        clients = [session.client(service, endpoint_url=endpoint) for service in ("cloudformation", "lambda", "sqs")]
        data["topologies"][name] = topology_entry(*clients, endpoint, account, region)
        print(f"[seed-app] {name}: account {account}, notify {data['topologies'][name]['notify_url']}")
    write_endpoints(data, out)
    print(f"[seed-app] wrote {out}: LAB_ENDPOINTS_FILE={out} make load PROFILE=seed-code")
    return data


SEED_REPOSITORY = "https://github.com/walmsles/serverless-observability"
# the seed's two branches are named as the lab's comparison pair (lab_kernel/topologies.toml)
SEED_BRANCHES = dict(zip(catalogue.catalogue().pair, ("444444444444", "555555555555"), strict=True))
SEED_REGION = "ap-southeast-2"


def _run(command: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    """A deploy step, its output shown as it comes (sam build and deploy take a while)."""
    import subprocess

    print(f"[seed-app] {what}: {' '.join(command)}", flush=True)
    done = subprocess.run(command, cwd=cwd, env=env)
    if done.returncode != 0:
        raise SystemExit(f"[seed-app] {what} failed (exit {done.returncode}) in {cwd}")


def deploy(seed_dir: Path, accounts: dict[str, str], endpoint: str, out: Path) -> dict:
    """The whole of docs/SEED_APP.md for each branch: a worktree of the branch beside the clone,
    its requirements from poetry.lock, `sam build`, `sam deploy` into the branch's own account
    (its samconfig.toml: stack sls-observe, ap-southeast-2), configure; then the endpoints file."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    sam = root / ".venv-sam" / "bin" / "sam"
    if not (seed_dir / ".git").exists():
        raise SystemExit(f"[seed-app] {seed_dir} is not a clone of the seed: git clone {SEED_REPOSITORY} {seed_dir}")
    if not sam.exists():
        raise SystemExit("[seed-app] no SAM CLI: run `make sam-cli` first")
    runtimes = runtime_path(root / ".lab" / "sam-runtimes")
    if not (runtimes / "python3.9").exists():
        raise SystemExit("[seed-app] the seed's functions are python3.9 and `sam build` needs one: "
                         "install it (e.g. `pyenv install 3.9`) and run again")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_SECRET_ACCESS_KEY="test", SAM_CLI_TELEMETRY="0",
               PATH=f"{runtimes}:{sam.parent}:{os.environ.get('PATH', '')}")
    for branch, account in accounts.items():
        tree = seed_dir.parent / f"{seed_dir.name}-{branch}"
        if not tree.exists():
            ref = next((r for r in (f"origin/{branch}", branch) if subprocess.run(
                ["git", "-C", str(seed_dir), "rev-parse", "--verify", "--quiet", r],
                capture_output=True).returncode == 0), None)
            if ref is None:
                raise SystemExit(f"[seed-app] {seed_dir} has no branch {branch}: git -C {seed_dir} fetch origin")
            _run(["git", "-C", str(seed_dir), "worktree", "add", "--detach", str(tree), ref], seed_dir, env,
                 f"{branch}: a worktree")
        print(f"[seed-app] {branch}: account {account}, {tree}", flush=True)
        requirements(tree)
        branch_env = {**env, "AWS_ACCESS_KEY_ID": account, "AWS_DEFAULT_REGION": SEED_REGION}
        _run([str(sam), "build"], tree, branch_env, f"{branch}: sam build")
        # --no-confirm-changeset: the seed's samconfig asks for a confirmation a script cannot give
        _run([str(sam), "deploy", "--no-confirm-changeset", "--no-fail-on-empty-changeset"], tree, branch_env,
             f"{branch}: sam deploy")
        os.environ["AWS_ENDPOINT_URL"] = endpoint  # configure reads the lab's URL from it
        configure("sls-observe", "TheApi", "/slow", "/sls-observe/delivery/endpoint",
                  "/sls-observe/delivery/api-key", SEED_REGION, account)
    return endpoints_file(accounts, SEED_REGION, out)


def _account_pair(text: str) -> tuple[str, str]:
    name, _, account = text.partition("=")
    known = catalogue.names()
    if name not in known or not (account.isdigit() and len(account) == 12):
        raise argparse.ArgumentTypeError(f"{text!r}: use " + " or ".join(f"{n}=<12 digits>" for n in known))
    return name, account


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bootstrap.seed_app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("requirements", help="services/*/requirements.txt from poetry.lock")
    req.add_argument("app_dir", type=Path)
    rt = sub.add_parser("runtime-path", help="print a folder of pythonX.Y links for `sam build`'s PATH")
    rt.add_argument("--folder", type=Path, default=Path(__file__).resolve().parents[1] / ".lab" / "sam-runtimes")
    conf = sub.add_parser("configure", help="fill the courier endpoint parameter and API key secret")
    conf.add_argument("--stack-name", default="sls-observe")
    conf.add_argument("--api", default="TheApi", help="the courier API's logical id")
    conf.add_argument("--path", default="/slow")
    conf.add_argument("--parameter", default="/sls-observe/delivery/endpoint")
    conf.add_argument("--secret", default="/sls-observe/delivery/api-key")
    conf.add_argument("--region", default="ap-southeast-2",
                      help="the seed's samconfig.toml region, which its delivery code also names")
    ends = sub.add_parser("endpoints", help="an endpoints file of the deployed branches for the lab's tools")
    ends.add_argument("--account", action="append", type=_account_pair, required=True, dest="accounts",
                      help="topology=account, once per deployed branch, e.g. "
                           f"{next(iter(SEED_BRANCHES))}=444444444444")
    ends.add_argument("--region", default="ap-southeast-2")
    ends.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / ".lab" / "seed-endpoints.json")
    dep = sub.add_parser("deploy", help="every step for both branches: worktrees, requirements, sam build, "
                                        "sam deploy, configure, the endpoints file")
    dep.add_argument("seed_dir", type=Path, help=f"a clone of {SEED_REPOSITORY}")
    dep.add_argument("--account", action="append", type=_account_pair, dest="accounts",
                     help="topology=account (default: "
                          + " ".join(f"{n}={a}" for n, a in SEED_BRANCHES.items()) + ")")
    dep.add_argument("--endpoint", default=None, help="the lab's LocalStack (default $AWS_ENDPOINT_URL or the lab's)")
    dep.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / ".lab" / "seed-endpoints.json")
    args = parser.parse_args(argv)
    if args.command == "deploy":
        from lab_kernel.settings import Settings

        if args.seed_dir == Path("."):
            raise SystemExit(f"[seed-app] say where the seed is: make seed-app SEED_DIR=<a clone of {SEED_REPOSITORY}>")
        endpoint = args.endpoint or os.environ.get("AWS_ENDPOINT_URL") or Settings.load().localstack_url
        deploy(args.seed_dir.resolve(), dict(args.accounts or SEED_BRANCHES.items()), endpoint, args.out)
        return 0
    if args.command == "endpoints":
        endpoints_file(dict(args.accounts), args.region, args.out)
        return 0
    if args.command == "requirements":
        return 0 if requirements(args.app_dir) else 1
    if args.command == "runtime-path":
        print(runtime_path(args.folder))
        return 0
    configure(args.stack_name, args.api, args.path, args.parameter, args.secret, args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main())
