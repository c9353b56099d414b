"""The compose mode's images, built from a Debian base plus Debian and PyPI packages only.

One build path for people, CI and the container tests (`make images`, `make up` in compose mode,
tests/support/localstack.py):

1. the base `LAB_BASE_IMAGE` (debian:trixie-slim pinned by digest) is used when present or
   pullable; where no registry answers, it is made with debootstrap (Debian's mirrors only) and
   tagged with the same name, `debian:trixie-slim`, saying so;
2. the lab's LocalStack (LocalStack from PyPI under the lab's lock, plus the lab's plugins) and
   Prometheus (Debian's package) are built on it; Docker's layer cache makes a rebuild take seconds.

Grafana is not built: it keeps its pinned upstream image, used when present or pullable
(`grafana_available`); compose mode starts without it otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab_kernel.settings import REPO_ROOT, Settings, SettingsError

# Marks a base made here with debootstrap, so a later build knows it is not the pinned digest.
DEBOOTSTRAP_LABEL = "org.serverless-boundary-lab.base"
# A registry that does not answer can hang a pull; one that is unreachable fails at once.
PULL_TIMEOUT = 120


@dataclass(frozen=True)
class LabImage:
    """One image the lab builds: its tag, Dockerfile and build arguments (settings keys)."""

    tag: str
    dockerfile: str
    build_args: dict[str, str]
    needs_pypi: bool = False


def say(text: str) -> None:
    print(f"[images] {text}", flush=True)


def docker(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], **kw)


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, capture_output=True).returncode == 0


def try_pull(ref: str) -> bool:
    """Pull `ref` if a registry answers; False (quietly) where none does."""
    try:
        return docker("pull", "--quiet", ref, capture_output=True, timeout=PULL_TIMEOUT).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def lab_images(settings: Settings) -> dict[str, LabImage]:
    version = settings.get("LOCALSTACK_VERSION")
    return {
        "localstack": LabImage(
            tag=f"serverless-boundary-lab/localstack:{version}",
            dockerfile="docker/localstack/Dockerfile",
            build_args={"LOCALSTACK_VERSION": version,
                        "PYTHON_DEBIAN_VERSION": settings.get("PYTHON_DEBIAN_VERSION")},
            needs_pypi=True,
        ),
        "prometheus": LabImage(
            tag=settings.get("PROMETHEUS_IMAGE"),
            dockerfile="docker/prometheus/Dockerfile",
            build_args={"PROMETHEUS_DEBIAN_VERSION": settings.get("PROMETHEUS_DEBIAN_VERSION")},
        ),
    }


def debootstrap_base(tag: str, suite: str) -> None:
    """Debian `suite` (minbase + Python 3.13) made with debootstrap and imported as `tag`."""
    if not shutil.which("debootstrap") and not Path("/usr/sbin/debootstrap").exists():
        subprocess.run(["bash", str(REPO_ROOT / "scripts/install-system-deps.sh"), "debootstrap"], check=False)
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise SettingsError("no image registry answers and debootstrap is missing: "
                            "install it (Debian: apt-get install debootstrap) or pull the base image")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lab-base-") as work:
        root = Path(work) / "root"
        say(f"debootstrap {suite} (minbase + python3.13) from Debian's mirror, about 30 s")
        result = subprocess.run(
            [debootstrap, "--variant=minbase", "--include=python3.13", suite, str(root),
             "http://deb.debian.org/debian"],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise SettingsError(f"debootstrap {suite} failed: {result.stdout.strip().splitlines()[-1:]}"
                                f" (is http://deb.debian.org reachable? run as root)")
        say(f"importing it as {tag}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        docker("import", "--change", f"LABEL {DEBOOTSTRAP_LABEL}=debootstrap-{suite}",
               "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "--change", 'CMD ["bash"]', "-", tag, stdin=tar.stdout, check=True, capture_output=True)
        tar.wait()
    say(f"base {tag} made with debootstrap in {time.monotonic() - began:.0f} s")


def ensure_base(settings: Settings) -> str:
    """The base image's reference to build on: the pinned digest, else the same name made locally."""
    pinned = settings.get("LAB_BASE_IMAGE")  # e.g. debian:trixie-slim@sha256:...
    local_tag = pinned.split("@", 1)[0]
    if image_exists(pinned):
        return pinned
    if image_exists(local_tag):
        label = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{DEBOOTSTRAP_LABEL}"}}}}',
                       local_tag, capture_output=True, text=True).stdout.strip()
        if label:
            say(f"base {local_tag}: made here with debootstrap (not the pinned digest: no registry answered)")
            return local_tag
    say(f"pulling the base {pinned}")
    if try_pull(pinned):
        return pinned
    suite = local_tag.rsplit(":", 1)[-1].removesuffix("-slim")
    say(f"no image registry answers: making {local_tag} with debootstrap instead of pulling the pinned digest")
    debootstrap_base(local_tag, suite)
    return local_tag


# Trust anchors a machine's administrator added (Debian's place for them): a build behind a
# TLS-inspecting proxy needs them in the image to reach PyPI, as the host's pip does.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


def extra_ca_certs() -> str:
    if not LOCAL_CA_DIR.is_dir():
        return ""
    return "\n".join(p.read_text().strip() for p in sorted(LOCAL_CA_DIR.glob("**/*.crt")))


def build(image: LabImage, base: str) -> None:
    began = time.monotonic()
    say(f"building {image.tag} ({image.dockerfile})")
    build_args = {"BASE_IMAGE": base, **image.build_args}
    if image.needs_pypi:
        build_args["EXTRA_CA_CERTS"] = extra_ca_certs()
    args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
    # Docker's classic builder: its "Step n/m" lines are the progress, and it uses the local base
    # without asking a registry (BuildKit's resolver asks one first); the client may warn it is old.
    result = subprocess.run(
        ["docker", "build", "--file", image.dockerfile, "--tag", image.tag, *args, "."],
        cwd=REPO_ROOT, env={**os.environ, "DOCKER_BUILDKIT": "0"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    for line in result.stdout.splitlines():
        # the build's steps and errors; not every line pip or apt prints
        if line.startswith(("Step ", "ERROR", "error", "The command")) or "Successfully" in line:
            print(f"  {line}", flush=True)
    if result.returncode != 0:
        print(result.stdout[-4000:], file=sys.stderr)
        raise SettingsError(f"building {image.tag} failed (above); PyPI and Debian's mirrors must be reachable")
    size = docker("image", "inspect", "--format", "{{.Size}}", image.tag, capture_output=True, text=True).stdout.strip()
    mb = int(size) / 1e6 if size.isdigit() else float("nan")
    say(f"{image.tag}: {mb:.0f} MB, built in {time.monotonic() - began:.0f} s")


def build_all(settings: Settings, names: tuple[str, ...] = ("localstack", "prometheus")) -> dict[str, str]:
    """Build the named images (cached layers make it quick when nothing changed); name -> tag."""
    images = lab_images(settings)
    base = ensure_base(settings)
    for name in names:
        build(images[name], base)
    return {name: images[name].tag for name in names}


def grafana_available(settings: Settings) -> bool:
    """Grafana's pinned upstream image is here or can be pulled."""
    image = settings.get("GRAFANA_IMAGE")
    return image_exists(image) or try_pull(image)


def main() -> int:
    try:
        build_all(Settings.load())
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
