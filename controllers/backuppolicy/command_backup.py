"""`vdcos backup run POLICY [-n NAMESPACE]`: a BackupPolicy's run now, not at its next
scheduled time.

It sets the annotation `vdcos.io/backup-run-requested` to a new token; the policy's next pass
takes the snapshots and copies the token into status.lastRunToken. The token is printed
alone on the last line, so a script can wait for the run:
`kubectl wait --for=jsonpath='{.status.lastRunToken}'=TOKEN bp/POLICY`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


async def _run(kubeconfig: Path | None, namespace: str, policy: str) -> int:
    from controllers.backuppolicy.kind import BACKUP_POLICY, BACKUP_RUN_REQUESTED_ANNOTATION
    from controllers.common.kube import KubeClient, KubeError
    from controllers.common.login import log_in

    kube = KubeClient(await log_in(kubeconfig), user_agent="vdcos-cli")
    token = str(int(datetime.now(UTC).timestamp() * 1000))
    try:
        patch = {"metadata": {"annotations": {BACKUP_RUN_REQUESTED_ANNOTATION: token}}}
        await kube.patch(BACKUP_POLICY.resource, namespace, policy, patch)
    except KubeError as error:
        if error.status == 404:
            print(f'Error: backuppolicy "{policy}" not found in namespace "{namespace}"',
                  file=sys.stderr)
            return 1
        raise
    finally:
        await kube.close()
    print(f"backuppolicy.vdcos.io/{policy}: run requested (status.lastRunToken will be "
          f"{token})")
    print(token)
    return 0


def command_backup(args: argparse.Namespace) -> int:
    from controllers.common.kube import KubeError
    from controllers.common.login import LoginError

    try:
        return asyncio.run(_run(args.kubeconfig, args.namespace, args.policy))
    except (LoginError, KubeError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1


def register(commands: Any) -> None:
    """Adds `backup run POLICY` to the vdcos subcommands."""
    backup: argparse.ArgumentParser = commands.add_parser(
        "backup", help="BackupPolicy: take its snapshots now")
    actions = backup.add_subparsers(dest="backup_command", required=True)
    text = "ask for a run of the policy now (instead of at its next scheduled time)"
    run = actions.add_parser("run", help=text, description=text)
    run.add_argument("policy", metavar="POLICY", help="the BackupPolicy's name")
    run.add_argument("-n", "--namespace", default="default", help="its namespace (default)")
    run.add_argument("--kubeconfig", type=Path, default=None,
                     help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    run.set_defaults(handler=command_backup)
