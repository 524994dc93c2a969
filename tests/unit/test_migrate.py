"""Pure logic of the live-migration check: argv of both sides, machine pinning, QEMU's blockers,
the figures, the report, the guest side's rerun hooks, and refusals that must come before any QEMU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from detection_support import BUSYBOX, PROBE_SH  # noqa: E402

from guestcompat.detection import frame  # noqa: E402
from guestcompat.detection.diff import Change  # noqa: E402
from guestcompat.detection.fingerprint import Fingerprint  # noqa: E402
from guestcompat.emulation.compiler import compile_profile  # noqa: E402
from guestcompat.emulation.target import Target  # noqa: E402
from guestcompat.errors import GuestcompatError, RunError  # noqa: E402
from guestcompat.harness import migrate as M  # noqa: E402
from guestcompat.harness.artefacts import substitute  # noqa: E402
from guestcompat.harness.migrate_report import report_lines  # noqa: E402
from guestcompat.harness.qemu_runner import BootImage  # noqa: E402
from guestcompat.images.init import READY_LINE, RERUN_FLAG, TRIGGER, render_init  # noqa: E402
from guestcompat.profiles.loader import load  # noqa: E402

PC = Target("x86_64", "pc", "tcg")
PSERIES = Target("ppc64", "pseries", "tcg")
IMAGE = BootImage(Path("/k"), Path("/i"), ("console=x", "quiet"))

NVME = """
extends = "vmware/esxi-6.5"
[[pci.devices]]
name = "nvme0"
kind = "qemu-nvme"
address = "00:10.0"
"""


def _built(compiled) -> dict[str, Path]:
    return {a.placeholder: Path(f"/a/{a.name}") for a in compiled.artefacts}


def _append(argv: list[str]) -> str:
    return argv[argv.index("-append") + 1]


@pytest.mark.parametrize("profile,target,tty", [("vmware/esxi-6.5", PC, "ttyS0"),
                                                ("power/pseries-vscsi", PSERIES, "hvc0")])
def test_both_sides_run_the_same_machine_and_ask_for_a_rerun_on_the_arch_console(profile, target, tty):
    compiled = compile_profile(load(profile), target)
    built = _built(compiled)
    src = M.source_argv(compiled, IMAGE, built)
    dst = M.dest_argv(compiled, IMAGE, built, None)
    assert f"{RERUN_FLAG}={tty}" in _append(src).split()
    assert "-S" in src and "-incoming" not in src
    assert "-S" not in dst and dst[-2:] == ["-incoming", "defer"]
    # Identical apart from -S and -incoming (each QMP monitor is its process owner's): the same
    # compiled machine on both sides.
    strip = lambda argv: [a for a in argv if a not in ("-S", "-incoming", "defer")]
    assert strip(src) == strip(dst)
    assert substitute(compiled.argv, built)[1:] == src[1:len(compiled.argv)]


def test_dest_binary_replaces_only_argv0():
    compiled = compile_profile(load("vmware/esxi-6.5"), PC)
    dst = M.dest_argv(compiled, IMAGE, _built(compiled), "/opt/qemu-8/bin/qemu-system-x86_64")
    assert dst[0] == "/opt/qemu-8/bin/qemu-system-x86_64" and dst[1:] == \
        M.dest_argv(compiled, IMAGE, _built(compiled), None)[1:]


def test_pin_machine_names_the_version_and_keeps_properties():
    argv = ["q", "-machine", "pseries,accel=tcg,host-model=IBM,,9009-22A", "-m", "512"]
    assert M.pin_machine(argv, "pseries-7.2") == ["q", "-machine", "pseries-7.2,accel=tcg,host-model=IBM,,9009-22A",
                                                  "-m", "512"]
    assert M.pin_machine(["q", "-machine", "pc"], "pc-i440fx-7.2") == ["q", "-machine", "pc-i440fx-7.2"]


def test_pinned_machine_is_the_binarys_version_of_the_alias():
    assert M.pinned_machine(compile_profile(load("vmware/esxi-6.5"), PC)).startswith("pc-i440fx-")


def test_qemu_blockers():
    assert M.qemu_blockers({"status": "setup", "blocked": False}) == ()
    assert M.qemu_blockers({"blocked": True, "blocked-reasons": ["non-migratable device: nvme"]}) == \
        ("non-migratable device: nvme",)
    assert M.qemu_blockers({"blocked": True}) == ("QEMU reports the migration as blocked (no reason given)",)


def test_stats_from_query_migrate():
    stats = M.MigrationStats.from_qmp({"status": "completed", "total-time": 913, "downtime": 131, "setup-time": 9,
                                       "ram": {"transferred": 49509387, "total": 536870912, "dirty-sync-count": 3}})
    assert (stats.status, stats.total_ms, stats.downtime_ms, stats.transferred_bytes, stats.dirty_sync_count) == \
        ("completed", 913, 131, 49509387, 3)
    assert M.MigrationStats.from_qmp({"status": "completed"}).downtime_ms is None


def _outcome(changes: tuple[Change, ...]) -> M.MigrationOutcome:
    fp = Fingerprint.from_document({"format": "guestcompat-probe", "version": 1, "arch": "x86_64"})
    compiled = compile_profile(load("vmware/esxi-6.5"), PC)
    return M.MigrationOutcome(compiled, None, ("qemu-a",), ("qemu-a",), 8.04, 2.5, 3.1,  # type: ignore[arg-type]
                              M.MigrationStats("completed", 2351, 737, 16, 122280095, 554573824, 3),
                              "postmigrate", "abc", fp, fp, changes)


def test_report_lines():
    same = report_lines(_outcome(()))
    assert "downtime 737 ms" in same[2] and "116.6 MiB sent of 528.9 MiB RAM" in same[2]
    assert same[-1].startswith("UNCHANGED")
    changed = report_lines(_outcome((Change("dmi", "DMI sys_vendor: VMware, Inc. → QEMU"),)))
    assert changed[-2:] == ["CHANGED: the guest sees 1 difference(s) after the migration:",
                            "  DMI sys_vendor: VMware, Inc. → QEMU"]
    assert _outcome(()).to_json()["verdict"] == "unchanged"


def test_init_reruns_the_probe_only_on_request():
    text = render_init("/probe/probe.sh")
    assert f"{RERUN_FLAG}=*) rerun=${{w#*=}}" in text
    assert f'"{TRIGGER} "*)' in text and f'GC_RUN=${{line#"{TRIGGER} "}} /probe/probe.sh' in text
    assert f'echo "{READY_LINE} on /dev/$rerun"' in text
    # The check of the device comes first: a failing `exec 4<` would end /init (and panic the kernel).
    assert text.index('[ -c "/dev/$rerun" ]') < text.index('exec 4<"/dev/$rerun"')
    assert "$(" not in text and "`" not in text


@pytest.mark.parametrize("token", [None, "3f9a0c"])
def test_probe_records_the_run_token(tmp_path, token):
    env = {**os.environ, "GC_SYSROOT": str(tmp_path / "sys"), "GC_HELPER": "", "GC_CONSOLE_LEVEL": "",
           "GC_TMPDIR": str(tmp_path / "t"), "GC_DMESG": "true", "GC_TOOLROOT": str(tmp_path / "none")}
    env.pop("GC_RUN", None)
    if token:
        env["GC_RUN"] = token
    out = subprocess.run([BUSYBOX, "sh", str(PROBE_SH)], env=env, capture_output=True, text=True, check=True).stdout
    doc = frame.extract_document(out.splitlines())
    assert doc.get("run") == token
    Fingerprint.from_document(doc)  # the token is not part of the machine's fingerprint


def test_a_profile_with_an_unmigratable_device_is_refused_before_anything_starts(profile_dir, monkeypatch):
    profile_dir("t/nvme", NVME)  # does not say migratable: migrating it asks for it
    assert "live-migration" not in {b.feature for b in compile_profile(load("t/nvme"), PC).blocked}
    started = []
    monkeypatch.setattr(M, "image_for", lambda *a, **k: started.append("image"))
    from guestcompat.qemu_process import QemuProcess
    monkeypatch.setattr(QemuProcess, "__aenter__", lambda *a, **k: started.append("qemu"))
    with pytest.raises(RunError, match=r"^t/nvme on x86_64/pc/tcg is blocked: platform\.migratable: QEMU's nvme"):
        M.migrate_profile("t/nvme", PC)
    from guestcompat.harness.cli import cli
    result = CliRunner().invoke(cli, ["migrate", "t/nvme"], standalone_mode=False)
    assert isinstance(result.exception, RunError) and "is blocked" in str(result.exception)
    assert started == []


def test_cli_exit_code_for_a_blocked_profile(profile_dir, tmp_path):
    profile_dir("t/nvme", NVME)
    env = {**os.environ, "GUESTCOMPAT_PROFILE_PATH": os.environ["GUESTCOMPAT_PROFILE_PATH"]}
    res = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "migrate", "t/nvme"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "blocked: platform.migratable: QEMU's nvme device is unmigratable" in res.stderr
    assert "Traceback" not in res.stderr


def test_an_unknown_destination_binary_is_refused_before_booting():
    compiled = compile_profile(load("vmware/esxi-6.5"), PC)
    with pytest.raises(GuestcompatError, match=r"--dest-qemu '/nonexistent/qemu': no such executable"):
        M.check_dest_binary(compiled, "/nonexistent/qemu")
