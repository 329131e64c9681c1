"""`vdcos up` as a plugin of the `vdcos` command: found, flagged, and absent in the image."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from controllers.cli import build_parser

REPO = Path(__file__).resolve().parent.parent.parent


def test_up_is_found_through_the_entry_point_and_takes_the_devcluster_flags() -> None:
    args = build_parser().parse_args(
        ["up", "--hosts", "3", "--node-grace-seconds", "3", "--port", "0",
         "--kubeconfig", "kc", "--apply", "examples"])
    assert (args.hosts, args.node_grace_seconds, args.apply) == (3, 3.0, Path("examples"))


def test_up_says_it_is_not_part_of_an_installation_without_vdcos_up(tmp_path: Path) -> None:
    # The operator image: the entry point is in the metadata, the module is not on the path.
    # A package named vdcos_up that fails to import stands in for the missing module.
    shadow = tmp_path / "vdcos_up"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('not in this image')\n")
    answer = subprocess.run(
        [sys.executable, "-c", "import sys; from controllers.cli import main; "
         "sys.exit(main(['up', '--apply', 'examples/']))"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"})
    assert answer.returncode == 2, answer.stderr
    assert "not part of this installation" in answer.stderr


def test_the_hot_add_hint_names_a_vm_that_can_live_migrate() -> None:
    from vdcos_up.hints import hot_add_candidate, next_steps
    from vdcos_up.manifests import documents, manifest_files

    examples = list(documents(manifest_files(REPO / "examples")))
    assert hot_add_candidate(examples) == ("web-01", 4)
    text = next_steps(Path("kc"), examples, applied_from=REPO / "examples")
    assert "kubectl patch vdcvm web-01 --type merge -p '{\"spec\": {\"cpu\": {\"count\": 4}}}'" \
        in text
    assert "kubectl apply -f examples/" not in text
    # The example switch bonds eth1 and eth2: pulling one leaves the switch up, Degraded.
    assert "kubectl get vds,dvpg" in text
    assert "vdcos drs run production" in text  # the example cluster runs DRS
    assert "kubectl annotate node host-1 sim.vdcos.io/nic-down=eth1" in text
    # The template, the vApp (its scalable member, within maxReplicas) and the backup policy.
    assert "kubectl get vdcvmt" in text
    assert "vdcos vapp scale shop web 3" in text
    assert "vdcos backup run nightly" in text
    # The same VM with its disk on a ReadWriteOnce policy: a hot-add would wait for a
    # restart, so no hot-add is offered.
    on_thin = [{**o, "spec": {**o["spec"], "disks": [
        {**d, "storagePolicyName": "thin"} for d in o["spec"].get("disks", [])]}}
        if o.get("kind") == "VirtualMachine" else o for o in examples]
    assert hot_add_candidate(on_thin) is None
    assert "hot-add" not in next_steps(Path("kc"), on_thin, applied_from=None)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_stays_below_the_output_on_a_terminal() -> None:
    from vdcos_up.console import Console

    terminal = _Terminal()
    console = Console(terminal)
    console.progress("VMs ready 0/3 (0s)")
    console.line("a log line")
    console.progress("VMs ready 2/3 (1s)")
    console.end_progress("All 3 VMs are Ready (1.2s).")
    # What the terminal shows once the carriage returns and line clears are applied.
    shown = [line.rsplit("\r\x1b[K", 1)[-1] for line in terminal.getvalue().split("\n")]
    assert shown == ["a log line", "All 3 VMs are Ready (1.2s).", ""]


def test_the_progress_is_plain_lines_in_a_file() -> None:
    from vdcos_up.console import Console

    file = io.StringIO()
    now = [0.0]
    console = Console(file, clock=lambda: now[0])
    console.progress("VMs ready 0/3 (0s)")
    console.progress("VMs ready 0/3 (0s)")  # unchanged: not repeated
    console.line("a log line")
    now[0] = 0.5
    console.progress("VMs ready 1/3 (0s)")  # half a second later: not a line of its own
    now[0] = 3.0
    console.progress("VMs ready 2/3 (3s)")
    console.end_progress("All 3 VMs are Ready (3.2s).")
    assert file.getvalue().splitlines() == ["VMs ready 0/3 (0s)", "a log line",
                                            "VMs ready 2/3 (3s)",
                                            "All 3 VMs are Ready (3.2s)."]
