"""VMware's LSI storage controllers on guestcompat's patched QEMU builds (issue 20, the QEMU side).

The series (images/patches/qemu-*/0007, 0008) adds ``x-sas-topology`` to ``mptsas1068`` (LSI Logic
SAS) and a device ``lsi53c1030`` (LSI Logic Parallel). A Debian 6.1 guest (the probe image: the
distribution kernel, its mptspi/mptsas/sd_mod modules, a shell script as the probe) boots with
disks on each controller, on both patched builds, and must see them: the driver's banner, each
disk as an sd device at the SCSI id QEMU gave it, a sector read back. SeaBIOS must boot from a
disk on each. No build is skipped: a missing build fails with the command that makes it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from guestcompat.detection.payload import ProbePayload
from guestcompat.emulation import arches
from guestcompat.images import qemu_builds
from guestcompat.images.build import GuestImage, ImageSpec, ensure_image

pytestmark = pytest.mark.boot

BUILDS = ["patched", "10.0-patched"]
SPI_ALIAS = "pci:v00001000d00000030sv000015ADsd00001976bc01sc00i00"  # mptspi
SAS_ALIAS = "pci:v00001000d00000054sv00001000sd00008000bc01sc00i00"  # mptsas
DISK_ALIAS = "scsi:t-0x00"                                              # sd_mod
VMWARE_DISK = "vendor=VMware,product=Virtual disk"

# The probe: wait (at most 30 s) for a disk, let the SCSI scan finish, then print the driver's
# lines, every sd disk (its sysfs path names host:channel:target:lun) with what LBA 1 holds (and,
# on SAS, the host phy its port uses), the SAS addresses Linux gave the end devices and host
# phys, and the controller's PCI identity and BARs as sysfs shows them.
PROBE = b"""#!/bin/sh
i=0
while [ $i -lt 30 ]; do
  set -- /sys/block/sd*
  [ -e "$1" ] && break
  sleep 1; i=$((i+1))
done
sleep 2
dmesg | grep -E 'ioc0|mptsas|scsi target|sd [0-9]'
for b in /sys/block/sd*; do
  [ -e "$b" ] || continue
  n=${b##*/}
  echo "gc-disk $n $(readlink -f $b/device) $(cat $b/device/vendor)|$(cat $b/device/model)"
  echo "gc-read $n $(dd if=/dev/$n bs=512 skip=1 count=1 2>/dev/null | head -c 32)"
  p=$(readlink -f $b/device)
  case $p in */port-*) echo "gc-phy $n $(ls ${p%/end_device-*} | grep '^phy-')" ;; esac
done
for d in /sys/class/sas_device/* /sys/class/sas_phy/*; do
  [ -e $d/sas_address ] && echo "gc-sas ${d##*/} $(cat $d/sas_address)"
done
for p in /sys/bus/pci/devices/*; do
  [ "$(cat $p/vendor)" = 0x1000 ] || continue
  echo "gc-pci $(cat $p/vendor) $(cat $p/device) $(cat $p/subsystem_vendor) $(cat $p/subsystem_device) $(cat $p/revision) $(cat $p/class)"
  n=0
  while read -r start end flags; do
    echo "gc-bar $n $start $end $flags"; n=$((n+1))
  done < $p/resource
done
echo gc-done
"""

# A boot sector (nasm source below) that prints a line on COM1, reads LBA 1 through INT 13h
# AH=42h and prints the NUL-terminated text found there, then writes to isa-debug-exit (0xf4):
# its output can only come from firmware that loaded it from the disk and serves INT 13h on it.
#   start: cli; xor ax,ax; mov ds,ax; mov es,ax; mov ss,ax; mov sp,0x7c00; sti
#          mov [drive],dl; mov si,booted; call puts
#          mov si,dap; mov ah,0x42; mov dl,[drive]; int 0x13; jc failed
#          mov si,0x8000; call puts; jmp leave
#   failed: mov si,readfail; call puts
#   leave: mov dx,0xf4; mov al,1; out dx,al
#   hang: hlt; jmp hang
#   puts: lodsb; test al,al; jz .done; mov ah,al; mov dx,0x3fd
#   .wait: in al,dx; test al,0x20; jz .wait; mov dx,0x3f8; mov al,ah; out dx,al; jmp puts
#   .done: ret
#   drive: db 0; dap: db 0x10,0; dw 1; dw 0x8000,0; dq 1
#   booted: db "gc-mbr: booted from this disk",13,10,0
#   readfail: db "gc-mbr: INT 13h read of LBA 1 failed",13,10,0
MBR_CODE = bytes.fromhex(
    "fa31c08ed88ec08ed0bc007cfb8816537cbe647ce82400be547cb4428a16537ccd137208be0080e81100eb06"
    "be847ce80900baf400b001eef4ebfdac84c0741288c4bafd03eca82074fbbaf80388e0eeebe9c30010000100"
    "00800000010000000000000067632d6d62723a20626f6f7465642066726f6d2074686973206469736b0d0a00"
    "67632d6d62723a20494e54203133682072656164206f66204c42412031206661696c65640d0a")


@pytest.fixture(scope="module")
def image() -> GuestImage:
    payload = ProbePayload({"/probe/probe.sh": (PROBE, 0o755)})
    return ensure_image(ImageSpec(arch=arches.get("x86_64"), modaliases=(SPI_ALIAS, SAS_ALIAS, DISK_ALIAS),
                                  payload=payload))


def _binary(build: str) -> str:
    """The build's qemu-system-x86_64; a missing build is an error naming `guestcompat qemu build`."""
    return qemu_builds.binary_for_alias(build, "x86_64", "qemu-system-x86_64")


def _disk(path: Path, marker: str, boot_sector: bytes = b"") -> Path:
    data = bytearray(4 << 20)
    data[:len(boot_sector)] = boot_sector
    if boot_sector:
        data[510:512] = b"\x55\xaa"
    text = marker.encode() + (b"\r\n\0" if boot_sector else b"\n\0")
    data[512:512 + len(text)] = text
    path.write_bytes(bytes(data))
    return path


def _drives(tmp_path: Path, bus: str, ids: dict[int, str]) -> list[str]:
    argv: list[str] = []
    for scsi_id, marker in ids.items():
        disk = _disk(tmp_path / f"disk{scsi_id}.raw", marker)
        argv += ["-drive", f"if=none,id=d{scsi_id},file={disk},format=raw",
                 "-device", f"scsi-hd,bus={bus}.0,scsi-id={scsi_id},drive=d{scsi_id},{VMWARE_DISK}"]
    return argv


def _boot(build: str, image: GuestImage, devices: list[str]) -> list[str]:
    argv = [_binary(build), "-nodefaults", "-display", "none", "-machine", "pc,accel=tcg", "-m", "512",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", f"console=ttyS0 {image.cmdline}", "-serial", "stdio", "-no-reboot", *devices]
    run = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
                         check=False)
    lines = [ln.rstrip("\r") for ln in run.stdout.splitlines()]
    assert run.returncode == 0 and "gc-done" in lines, (run.returncode, run.stderr, lines[-40:])
    return lines


def _disks(lines: list[str]) -> dict[str, tuple[str, str]]:
    """``{h:c:t:l: (sdX, vendor|model)}`` from the probe's gc-disk lines."""
    found = {}
    for ln in lines:
        if ln.startswith("gc-disk "):
            _, name, path, ident = ln.split(" ", 3)
            found[path.rsplit("/", 1)[1]] = (name, re.sub(r"\s+\|", "|", ident).strip())
    return found


def _reads(lines: list[str]) -> dict[str, str]:
    return {ln.split()[1]: ln.split(" ", 2)[2].strip() for ln in lines if ln.startswith("gc-read ")}


def _bars(lines: list[str]) -> dict[int, tuple[int, int]]:
    """BAR n → (size, flags) from sysfs ``resource`` (only the BARs that are set)."""
    bars = {}
    for ln in lines:
        if ln.startswith("gc-bar "):
            n, start, end, flags = (int(x, 0) for x in ln.split()[1:])
            if end:
                bars[n] = (end - start + 1, flags)
    return bars


IORESOURCE_IO, IORESOURCE_MEM, IORESOURCE_MEM_64 = 0x100, 0x200, 0x100000


@pytest.mark.parametrize("build", BUILDS)
def test_mptspi_binds_lsi53c1030_and_sees_its_disks_with_vmwares_identity_and_transfer(build, image, tmp_path):
    devices = ["-device", "lsi53c1030,id=spi", *_drives(tmp_path, "spi", {0: "gc-marker-id0", 9: "gc-marker-id9"})]
    lines = _boot(build, image, devices)
    text = "\n".join(lines)
    assert "ioc0: LSI53C1030 B0: Capabilities={Initiator}" in text
    assert re.search(r"ioc0: LSI53C1030 B0, FwRev=00000000h, Ports=1, MaxQ=128\b", text), text
    for target in ("target0:0:0", "target0:0:9"):  # ids above the initiator's 7 work too
        assert f"scsi {target}: FAST-40 WIDE SCSI 80.0 MB/s ST (25 ns, offset 127)" in text, text
    disks = _disks(lines)
    assert set(disks) == {"0:0:0:0", "0:0:9:0"}, disks
    assert {ident for _, ident in disks.values()} == {"VMware|Virtual disk"}
    reads = _reads(lines)
    assert reads[disks["0:0:0:0"][0]] == "gc-marker-id0" and reads[disks["0:0:9:0"][0]] == "gc-marker-id9"
    assert "gc-pci 0x1000 0x0030 0x15ad 0x1976 0x01 0x010000" in lines
    bars = _bars(lines)
    assert set(bars) == {0, 1, 3}, bars                      # BAR2/BAR4: the upper halves
    assert bars[0][0] == 256 and bars[0][1] & IORESOURCE_IO
    for n in (1, 3):
        assert bars[n][0] == 128 << 10 and bars[n][1] & IORESOURCE_MEM and bars[n][1] & IORESOURCE_MEM_64


@pytest.mark.parametrize("build", BUILDS)
def test_mptsas_attaches_the_disks_of_mptsas1068_with_x_sas_topology(build, image, tmp_path):
    devices = ["-device", "mptsas1068,id=sas,x-sas-topology=on",
               *_drives(tmp_path, "sas", {0: "gc-marker-id0", 3: "gc-marker-id3"})]
    lines = _boot(build, image, devices)
    attached = {int(m.group(1)): int(m.group(2), 16) for m in (
        re.search(r"mptsas: ioc0: attaching ssp device: fw_channel 0, fw_id (\d+), phy \1, sas_addr (0x[0-9a-f]+)",
                  ln) for ln in lines) if m}
    assert set(attached) == {0, 3}, lines[-60:]
    assert 0 not in attached.values() and len(set(attached.values())) == 2
    # Linux's SAS transport numbers targets in discovery order (as on VMware); where a disk sits
    # is its phy (udev's by-path: sas-phyN), and QEMU's scsi-id N is phy N.
    disks = _disks(lines)
    assert len(disks) == 2 and {ident for _, ident in disks.values()} == {"VMware|Virtual disk"}, disks
    reads = _reads(lines)
    phys = {ln.split()[1]: ln.split()[2] for ln in lines if ln.startswith("gc-phy ")}
    assert {reads[name]: phys[name] for name, _ in disks.values()} == {
        "gc-marker-id0": "phy-0:0", "gc-marker-id3": "phy-0:3"}, (reads, phys)
    # The host's phys carry the controller's own address (its device handle), not a disk's.
    sas = dict(ln.split()[1:3] for ln in lines if ln.startswith("gc-sas "))
    host = {int(v, 16) for k, v in sas.items() if k.startswith("phy-")}
    ends = {int(v, 16) for k, v in sas.items() if k.startswith("end_device-")}
    assert ends == set(attached.values())
    assert len(host) == 1 and 0 not in host and not host & ends, sas


def test_without_x_sas_topology_mptsas1068_still_shows_no_disk(image, tmp_path):
    """The counter-case: the option is what makes the disks appear (stock behaviour is the default)."""
    lines = _boot("patched", image, ["-device", "mptsas1068,id=sas", *_drives(tmp_path, "sas", {0: "gc-marker"})])
    assert any("LSISAS1068 A0, FwRev=01329200h, Ports=8" in ln for ln in lines)
    assert not any("attaching ssp device" in ln for ln in lines)
    assert _disks(lines) == {}


@pytest.mark.parametrize("controller", ["lsi53c1030", "mptsas1068,x-sas-topology=on"])
@pytest.mark.parametrize("build", BUILDS)
def test_seabios_boots_from_a_disk_on_the_controller(build, controller, tmp_path):
    disk = _disk(tmp_path / "boot.raw", "gc-lba1: read through INT 13h", MBR_CODE)
    argv = [_binary(build), "-nodefaults", "-display", "none", "-machine", "pc,accel=tcg", "-m", "128",
            "-serial", "stdio", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4",
            "-device", f"{controller},id=hba", "-drive", f"if=none,id=d0,file={disk},format=raw",
            "-device", "scsi-hd,bus=hba.0,scsi-id=0,drive=d0,bootindex=0"]
    run = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    lines = [ln.rstrip("\r") for ln in run.stdout.splitlines()]
    assert lines[-2:] == ["gc-mbr: booted from this disk", "gc-lba1: read through INT 13h"], (run.stderr, lines)
    assert run.returncode == 3  # isa-debug-exit: (1 << 1) | 1


@pytest.mark.parametrize("build", BUILDS)
def test_scsi_id_7_is_the_53c1030s_own_and_never_a_disks(build, tmp_path):
    disk = _disk(tmp_path / "d.raw", "x")
    base = [_binary(build), "-nodefaults", "-display", "none", "-machine", "pc,accel=tcg", "-S",
            "-device", "lsi53c1030,id=spi"]
    run = subprocess.run([*base, "-drive", f"if=none,id=d7,file={disk},format=raw",
                          "-device", "scsi-hd,bus=spi.0,scsi-id=7,drive=d7"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert "scsi-id 7 is the host adapter's own id on this bus (its initiator)" in run.stderr
    # Eight disks without an id: QEMU numbers them 0-6 and 8, never 7.
    drives: list[str] = []
    for n in range(8):
        drives += ["-drive", f"if=none,id=a{n},file={disk},format=raw,readonly=on",
                   "-device", f"scsi-hd,bus=spi.0,drive=a{n},id=disk{n}"]
    run = subprocess.run([*base, *drives, "-monitor", "stdio"], input="info qtree\nquit\n",
                         capture_output=True, text=True, timeout=60, check=False)
    ids = sorted(int(m) for m in re.findall(r"scsi-id = (\d+)", run.stdout))
    assert ids == [0, 1, 2, 3, 4, 5, 6, 8], run.stdout[-3000:]
