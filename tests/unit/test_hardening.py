"""Issue 13 (hardening): each defect the audit found, as a test that failed before its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.qemuopts import global_property, parse_option
from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError, ProfileError
from guestcompat.profiles.loader import load

PC = Target("x86_64", "pc", "tcg")


def _keys(argv) -> list[tuple[str, frozenset[str]]]:
    out, i = [], 1
    while i < len(argv) - 1:
        if argv[i].startswith("-") and not argv[i + 1].startswith("-"):
            head, props = parse_option(argv[i], argv[i + 1])
            out.append((argv[i], frozenset(props)))
            i += 2
        else:
            i += 1
    return out


# -- option injection through -cpu ------------------------------------------------------------------
def test_a_comma_in_the_brand_string_adds_no_option(profile_dir):
    profile_dir("t/evil", '''
        extends = "interfaces/kvm"
        [cpu]
        model_id = "Xeon,model-id=EVIL,vendor=AuthenticAMD"
        ''')
    profile_dir("t/plain", '''
        extends = "interfaces/kvm"
        [cpu]
        model_id = "Xeon"
        ''')
    evil, plain = compile_profile(load("t/evil"), PC).argv, compile_profile(load("t/plain"), PC).argv
    assert _keys(evil) == _keys(plain)
    assert "qemu64-x86_64-cpu.model-id=Xeon,model-id=EVIL,vendor=AuthenticAMD" in evil
    # the libvirt backend passes the same literal -global (main doubled the commas there)
    from guestcompat.emulation.libvirt_xml import render

    xml = render(compile_profile(load("t/evil"), PC)).xml
    assert 'value="qemu64-x86_64-cpu.model-id=Xeon,model-id=EVIL,vendor=AuthenticAMD"' in xml


def test_global_property_refuses_what_the_short_form_cannot_carry():
    assert global_property("vmport", "vmware-vmx-type", 2) == "vmport.vmware-vmx-type=2"
    with pytest.raises(ValueError):
        global_property("a.b", "c", "x")
    with pytest.raises(ValueError):
        global_property("cpu", "model-id", "a\nb")
    assert parse_option("-global", "x.y=a,b=c") == ("", {"x.y": "a,b=c"})


# -- internal errors that are now project errors ---------------------------------------------------
def test_non_utf8_toml_is_a_profile_error(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'extends = "vmware/esxi-6.5"\ndescription = "\xff\xfe"\n')
    with pytest.raises(ProfileError, match=r"bad.toml: not UTF-8 .*byte 0xff"):
        load(str(path))


def test_a_very_long_extends_is_a_profile_error(profile_dir):
    profile_dir("t/long", f'extends = "{"a" * 5000}"\n')
    with pytest.raises(ProfileError, match="extends: .* is not a profile name"):
        load("t/long")
    with pytest.raises(ProfileError, match="does not exist"):
        load("/" + "b" * 5000 + ".toml")


def test_an_empty_substitute_reason_is_refused_at_load(profile_dir):
    profile_dir("t/sub", '''
        extends = "vmware/esxi-6.5"
        [[pci.devices]]
        name = "ethernet0"
        substitute = { reason = "" }
        ''')
    with pytest.raises(ProfileError, match=r"pci.devices\[ethernet0\].substitute.reason: is empty"):
        load("t/sub")


def test_deep_nesting_is_a_project_error_everywhere(profile_dir, tmp_path: Path):
    from guestcompat.detection.fingerprint import Fingerprint
    from guestcompat.detection.frame import decode_payload
    from guestcompat.harness.baseline import load_fingerprint as read_baseline

    profile_dir("t/deep", "x = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ProfileError, match="nested too deeply"):
        load("t/deep")
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(GuestcompatError, match="recursion|nested"):
        decode_payload(deep.encode())
    with pytest.raises(GuestcompatError, match="recursion|nested"):
        Fingerprint.from_json(deep)
    path = tmp_path / "b.json"
    path.write_text(deep)
    with pytest.raises(GuestcompatError, match="recursion|nested"):
        read_baseline(path)


@pytest.mark.parametrize("image", ["/tmp/a\nb.raw", "/tmp/a\0b.raw", "/etc/shadow", "/dev/sda.raw", "/proc/self/mem.img",
                                   ""])
def test_disk_images_refuse_what_cannot_be_a_disk_file(profile_dir, image):
    profile_dir("t/img", f'''
        extends = "vmware/esxi-6.5"
        [[disks]]
        name = "disk0"
        image = {json.dumps(image)}
        ''')
    with pytest.raises(ProfileError, match=r"disks\[disk0\].image"):
        load("t/img")


def test_an_argv_element_exec_would_refuse_is_a_compile_error(profile_dir):
    from guestcompat.errors import CompileError

    profile_dir("t/big", f'''
        extends = "vmware/esxi-6.5"
        [smbios.system]
        product = "{'A' * 200_000}"
        ''')
    with pytest.raises(CompileError, match=r"-smbios type=1.*bytes; Linux passes at most 131071"):
        compile_profile(load("t/big"), PC)


@pytest.mark.parametrize("line", ["@@GUESTCOMPAT-BEGIN v1 sha256=" + "0" * 64 + " bytes=" + "9" * 5000,
                                  "@@GUESTCOMPAT-BEGIN v" + "1" * 5000 + " sha256=" + "0" * 64 + " bytes=5"])
def test_absurd_frame_headers_are_probe_errors(line):
    from guestcompat.detection.frame import FrameReader
    from guestcompat.errors import ProbeError

    reader = FrameReader()
    with pytest.raises(ProbeError, match="malformed probe BEGIN"):
        reader.feed(line)


# -- silent acceptances ------------------------------------------------------------------------------
VMX = (Path(__file__).parent.parent / "data" / "esxi67-web01.vmx").read_text()


@pytest.mark.parametrize("value", ["²", "-4096", "lots", "4096.5", "1" * 5000])
def test_vmx_memsize_that_is_not_a_size_is_listed(value):
    from guestcompat.profiles.importers.vmx import import_vmx

    result = import_vmx(VMX.replace('memSize = "4096"', f'memSize = "{value}"'), "imported/x", "x.vmx")
    assert "memory_mb" not in result.data["platform"]
    assert any(n.startswith("memsize:") and "not a memory size" in n for n in result.notes)


def test_hardware_version_is_bounded(profile_dir):
    profile_dir("t/hw", '''
        extends = "vmware/esxi-6.5"
        [platform]
        hardware_version = 100000000000
        ''')
    with pytest.raises(ProfileError, match="platform.hardware_version"):
        load("t/hw")


def test_extends_takes_a_profile_name_never_a_file(profile_dir, tmp_path: Path):
    target = tmp_path / "elsewhere.toml"
    target.write_text('extends = "vmware/esxi-6.5"\n')
    for parent in (str(target), "../elsewhere", "t/../vmware/esxi-6.5"):
        profile_dir("t/abs", f'extends = "{parent}"\n')
        with pytest.raises(ProfileError, match="extends: .* is not a profile name"):
            load("t/abs")


@pytest.mark.parametrize("text", ["A\u0085B", "A\u009bB", "abc\u202edcba", "x\u2066y", "\u200fz"])
def test_c1_controls_and_bidi_overrides_never_reach_smbios(profile_dir, text):
    profile_dir("t/c1", f'''
        extends = "vmware/esxi-6.5"
        [smbios.system]
        product = {json.dumps(text)}
        ''')
    with pytest.raises(ProfileError, match=r"smbios.system.product: contains the (control character|bidirectional)"):
        load("t/c1")


def test_pci_addresses_are_matched_whole():
    from guestcompat.bridges.address import PciAddress

    for text in ("0000:00:00.0,", "00:00.0\n", "00:00.0\nx", "00:00.0,,"):
        with pytest.raises(ValueError):
            PciAddress.parse(text)
    assert str(PciAddress.parse(" 0000:0b:00.0 ")) == "0b:00.0"


def test_an_appended_list_entry_is_blamed_on_its_own_file(profile_dir):
    child = profile_dir("t/child", '''
        extends = "vmware/esxi-6.5"
        [[pci.devices]]
        kind = "vmxnet3"
        address = "yy"
        ''')
    with pytest.raises(ProfileError) as info:
        load("t/child")
    lines = [line for line in str(info.value).splitlines() if "pci.devices" in line]
    assert lines and all(line.startswith(f"{child}:") for line in lines), str(info.value)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("guestcompat")), *args], cwd=cwd,
                          capture_output=True, text=True)


def test_import_vmx_leaves_no_file_when_the_profile_is_invalid(tmp_path: Path):
    vmx = tmp_path / "web01.vmx"
    vmx.write_text(VMX.replace('ethernet0.generatedAddress = "00:50:56:ab:12:34"',
                               'ethernet0.generatedAddress = "01:50:56:ab:12:34"'))  # multicast: refused at load
    proc = _cli("import", "vmx", str(vmx), "--disks", "blank", cwd=tmp_path)
    assert proc.returncode == 2 and "multicast" in proc.stderr and "internal error" not in proc.stderr
    assert not (tmp_path / "profiles").exists() or not list((tmp_path / "profiles").rglob("*.toml"))
    assert "imported/web01.toml" in proc.stderr or "web01" in proc.stderr


# -- host files as guest disks ----------------------------------------------------------------------
def _vmdk(directory: Path, name: str = "disk.vmdk", subformat: str = "monolithicSparse") -> Path:
    import subprocess

    directory.mkdir(parents=True, exist_ok=True)
    out = directory / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", f"subformat={subformat}", str(out), "1M"],
                   check=True)
    return out


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink", "extent"])
def test_import_refuses_disk_files_outside_the_package(tmp_path: Path, where: str):
    from guestcompat.profiles.importers.vmx import DiskPolicy, import_vmx

    package = tmp_path / "vm"
    package.mkdir()
    outside = _vmdk(tmp_path / "other")
    if where == "absolute":
        name = str(outside)
    elif where == "dotdot":
        name = "../other/disk.vmdk"
    elif where == "symlink":
        (package / "web01.vmdk").symlink_to(outside)
        name = "web01.vmdk"
    else:  # a descriptor inside the package whose extent is elsewhere
        flat = _vmdk(tmp_path / "other", "flat.vmdk", "monolithicFlat")
        extent = flat.with_name("flat-flat.vmdk")
        (package / "web01.vmdk").write_text(flat.read_text().replace('"flat-flat.vmdk"', f'"{extent}"'))
        name = "web01.vmdk"
    text = VMX.replace('scsi0:0.fileName = "web01.vmdk"', f'scsi0:0.fileName = "{name}"')
    for mode in ("attach", "convert"):
        policy = DiskPolicy(mode=mode, base_dir=package, disk_dir=tmp_path / "out")
        with pytest.raises(ProfileError, match="outside the VM's directory"):
            import_vmx(text, "imported/web01", str(package / "web01.vmx"), disks=policy)
    allowed = import_vmx(text, "imported/web01", str(package / "web01.vmx"),
                         disks=DiskPolicy(mode="attach", base_dir=package, allow_outside=True))
    assert _scsi_disk(allowed.data)["image"]


def test_import_attaches_a_disk_inside_the_package(tmp_path: Path):
    from guestcompat.profiles.importers.vmx import DiskPolicy, import_vmx

    package = tmp_path / "vm"
    _vmdk(package / "disks", "web01.vmdk")
    text = VMX.replace('scsi0:0.fileName = "web01.vmdk"', 'scsi0:0.fileName = "disks/web01.vmdk"')
    result = import_vmx(text, "imported/web01", str(package / "web01.vmx"),
                        disks=DiskPolicy(mode="attach", base_dir=package))
    assert _scsi_disk(result.data)["image"] == str((package / "disks" / "web01.vmdk").resolve())


# -- smaller ------------------------------------------------------------------------------------------
def test_a_document_without_this_boots_nonce_is_refused():
    from guestcompat.errors import ProbeError
    from guestcompat.harness.run import RUN_FLAG, boot_image, check_origin, new_nonce
    from guestcompat.images.build import GuestImage

    nonce = new_nonce()
    assert len(nonce) == 32 and nonce != new_nonce()
    compiled = compile_profile(load("interfaces/kvm"), PC)
    image = GuestImage(kernel=Path("/k"), initrd=Path("/i"), kernel_version="6", packages={}, key="k", modules=(),
                       cmdline="")
    assert f"{RUN_FLAG}={nonce}" in boot_image(compiled, image, nonce).cmdline
    check_origin({"run": nonce}, nonce)
    for forged in ({}, {"run": "0" * 32}, {"run": ["x"]}):
        with pytest.raises(ProbeError, match="not from this boot"):
            check_origin(forged, nonce)


def test_the_option_parser_reads_cpu_as_qemu_does():
    """So the fuzz property (argv keys) sees what main's ',,'-escaped brand string did on -cpu."""
    head, props = parse_option("-cpu", "qemu64,vendor=GenuineIntel,model-id=Xeon,,model-id=EVIL")
    assert head == "qemu64" and set(props) == {"vendor", "model-id", ""}


def test_kept_console_lines_stop_at_the_cap_and_pickle_as_a_list():
    import pickle

    from guestcompat.harness.console_log import KEEP_BYTES, KeptLines

    lines = KeptLines()
    for _ in range(KEEP_BYTES // 100 + 10):
        lines.keep("x" * 99)
    assert sum(len(line) + 1 for line in lines) <= KEEP_BYTES + 200 and lines.dropped > 0
    assert lines[-1].startswith("<console flood")
    assert type(pickle.loads(pickle.dumps(lines))) is list


def test_an_lspci_slot_that_is_not_an_address_is_reported_not_kept():
    from guestcompat.detection.tools import parse_lspci_vmm as parse_lspci_mm

    devices, errors = parse_lspci_mm("Slot:\t0000:00:00.0,\nClass:\tHost bridge [0600]\nVendor:\tIntel [8086]\n"
                                     "Device:\t440BX [7190]\n\nSlot:\t00:01.0\nClass:\tISA bridge [0601]\n"
                                     "Vendor:\tIntel [8086]\nDevice:\tPIIX4 [7110]\n")
    assert [d.slot for d in devices] == ["00:01.0"]
    assert any("'0000:00:00.0,' is not a PCI address" in e for e in errors)


def test_diff_of_a_fingerprint_with_an_odd_hypervisor_line():
    """Found by the fuzz target: a stored fingerprint whose hypervisor_lines entry lacks the prefix."""
    from guestcompat.detection.diff import diff
    from guestcompat.detection.fingerprint import Fingerprint

    data = json.loads((Path(__file__).parent.parent / "data" / "esxi-6.5.fingerprint.json").read_text())
    odd = Fingerprint.from_json(json.dumps({**data, "hypervisor_lines": ["Xeon,model-id=EVIL"]}))
    changes = diff(Fingerprint.from_json(json.dumps(data)), odd)
    assert any("Xeon,model-id=EVIL" in c.text for c in changes)


def test_a_lone_surrogate_is_refused_in_guest_visible_strings():
    from guestcompat.profiles.model import Cpu

    with pytest.raises(ValueError, match="lone surrogate"):
        Cpu(model_id="Xeon\udcff")


def test_non_ascii_base64_in_a_fingerprint_is_a_probe_error():
    """Found by the fuzz target: base64 fields with non-ASCII text raised ValueError from base64."""
    from guestcompat.detection.jsonmodel import from_plain
    from guestcompat.errors import ProbeError

    with pytest.raises(ProbeError, match="base64"):
        from_plain(bytes, "\ufffdX1NNX/wfAgh9AAAA", "smbios_raw")


def _scsi_disk(data: dict) -> dict:
    """The VM's SCSI disk (the sample also has a SATA CD-ROM drive, imported since issue 20)."""
    return next(d for d in data["disks"] if d["controller"] == "scsi0")
