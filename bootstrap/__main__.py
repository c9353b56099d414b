"""`python -m bootstrap provision|teardown [--localstack-url URL]`: what `make bootstrap` runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from bootstrap.packaging import PackagingError
from bootstrap.provision import ENDPOINTS_FILE, ProvisioningError, provision_all
from bootstrap.teardown import teardown_all
from lab_kernel.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bootstrap", description=__doc__)
    parser.add_argument("command", choices=["provision", "teardown"])
    parser.add_argument("--localstack-url", help="one LocalStack for both topologies (default: each topology's "
                        "LocalStack from .env: LAB_LOCALSTACK_PORT, LAB_LOCALSTACK_FLOW_CONTROL_PORT)")
    parser.add_argument("--endpoints-file", type=Path, default=ENDPOINTS_FILE,
                        help=f"default: $LAB_ENDPOINTS_FILE or {ENDPOINTS_FILE}")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
        url = args.localstack_url or settings.localstack_url
        urls = None if args.localstack_url else settings.localstack_urls()
        if args.command == "provision":
            provision_all(url, settings, endpoints_file=args.endpoints_file, urls=urls)
        else:
            teardown_all(url, endpoints_file=args.endpoints_file, urls=urls)
    except (ProvisioningError, PackagingError, SettingsError) as error:
        print(f"bootstrap: error: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"bootstrap: error: AWS call failed against LocalStack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
