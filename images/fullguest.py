"""A full Debian 12 guest packaged as a VMware VM (monolithic sparse VMDK + .vmx).

The probe images of images/build.py are initramfs-only; this one is a real
installed system: debootstrap (minbase) with systemd, udev, the Debian kernel
and its MODULES=most initrd, systemd-networkd with a static address on
``ens192`` the way a VMware guest has it, and the probe as a systemd unit
(images/fullguest_files.py writes the guest's files).

No loop mount and no mount at all on the host: the tree is turned into an
ext4 image with ``mke2fs -d``, converted with ``qemu-img convert -O vmdk``.
The disk has no bootloader: installing one needs the disk mounted (or a
partition table and grub-install on a device), so the harness boots the
kernel and initrd it reads *out of the disk* with debugfs
(harness/diskboot.py), with ``root=UUID=`` of the disk's file system.

Cached under ``cache_root()/fullguest/<key>``; the key hashes the package
versions apt resolves for the requested packages, the guest configuration and
the probe payload, so a new kernel, a new probe or a new address rebuilds.
debootstrap's downloads are kept in ``cache_root()/debootstrap-debs`` so a
rebuild does not download again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from guestcompat import paths
from guestcompat.detection.payload import ProbePayload
from guestcompat.errors import ImageError

from . import cache
from .debian import PackageSource
from .fullguest_files import templates_text, write_guest_files, write_text_files
from .fullguest_initrd import initramfs_conf, read_aliases, resolve_modules, storage_modaliases
from .tools import run_tool

Progress = Callable[[str], None]

#: Bump when the build steps change in a way the key does not see.
BUILD_FORMAT = 2
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: Tries of the whole debootstrap run: a mirror answering 404 for a file its
#: index still lists (an index updated between two downloads) succeeds on a retry.
DEBOOTSTRAP_TRIES = 2


#: The guest's packages around its kernel (``FullGuestConfig.for_arch`` puts the strategy's
#: ``kernel_package`` between them: the order is part of the cache key).
PACKAGES_BEFORE_KERNEL = ("systemd", "systemd-sysv", "udev")
PACKAGES_AFTER_KERNEL = ("iproute2", "pciutils", "dmidecode", "kmod", "virt-what", "pci.ids", "open-vm-tools")


@dataclass(frozen=True)
class FullGuestConfig:
    """What the guest is: packages and the VMware-side configuration. Every field is in the key."""

    packages: tuple[str, ...]
    """Debian packages debootstrap installs, the architecture's kernel metapackage among them."""
    also_boots_on: tuple[str, ...]
    """QEMU machine types the same disk must also boot on (the counter-case, the strategy's default
    machine): their storage is in the initrd."""
    suite: str = "bookworm"
    hostname: str = "debian12-vm"
    nic_name: str = "ens192"
    address: str = "192.168.50.10/24"
    gateway: str = "192.168.50.1"
    mac: str = "00:50:56:9a:60:e7"
    uuid_bios: str = "42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f"
    memory_mb: int = 1024
    controller: str = "pvscsi"
    """Catalog kind of the VM's SCSI controller (the .vmx's ``scsi0.virtualDev``), holding the root disk."""
    boot_controllers: tuple[str, ...] = ("pvscsi", "lsilogic", "lsisas1068", "vmware-sata", "vmware-nvme",
                                         "piix4-ide")
    """Catalog kinds of every controller VMware may give the disk (its initrd carries their drivers, as a
    guest installed on VMware carries the one of its controller): the boot matrix moves the disk there."""
    fs_type: str = "ext4"
    headroom_mb: int = 160
    """Free space left in the root file system beyond what the tree needs."""

    @classmethod
    def for_arch(cls, arch: Any, **settings: Any) -> FullGuestConfig:
        """The standard guest for ``arch`` (duck-typed ArchStrategy: ``kernel_package``,
        ``default_machine``), with ``settings``."""
        return cls(**{"packages": (*PACKAGES_BEFORE_KERNEL, arch.kernel_package, *PACKAGES_AFTER_KERNEL),
                      "also_boots_on": (arch.default_machine,), **settings})


@dataclass(frozen=True)
class FullGuest:
    """A built (or cached) full guest: the VM as VMware would ship it."""

    directory: Path
    vmx: Path
    vmdk: Path
    key: str
    root_uuid: str
    kernel_version: str
    packages: tuple[tuple[str, str], ...]
    """Every installed package and its version (dpkg's view of the built tree)."""
    build_seconds: float


def mirror() -> str:
    return os.environ.get("GUESTCOMPAT_DEBIAN_MIRROR", DEFAULT_MIRROR)


def _key(config: FullGuestConfig, versions: dict[str, str], payload: ProbePayload) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": BUILD_FORMAT, "config": asdict(config), "versions": versions,
                         "mirror": mirror(), "probe": payload.content_hash,
                         "templates": templates_text()}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def _versions(config: FullGuestConfig, arch: Any, progress: Progress) -> dict[str, str]:
    """apt's candidate versions of the requested packages (the kernel metapackage resolved to
    its kernel): what debootstrap will install, as far as the host's index knows."""
    plain = [p for p in config.packages if p != arch.kernel_package]
    kernels = [p for p in config.packages if p == arch.kernel_package]
    resolved = PackageSource(paths.cache_root() / "debs", progress).resolve(plain, kernels, arch.debian_arch)
    return {name: f"{refs[0].name}={refs[0].version}" for name, refs in sorted(resolved.items()) if refs}


def _load(directory: Path) -> FullGuest | None:
    data = cache.read_json(directory / "fullguest.json")
    if not isinstance(data, dict) or not (directory / data.get("vmdk", "-")).is_file():
        return None
    return FullGuest(directory, directory / data["vmx"], directory / data["vmdk"], data["key"], data["root_uuid"],
                     data["kernel_version"], tuple((k, v) for k, v in data["packages"]), data["build_seconds"])


def ensure_full_guest(payload: ProbePayload, arch: Any, config: FullGuestConfig | None = None,
                      progress: Progress | None = None) -> FullGuest:
    """The cached full guest for *config* (default: ``FullGuestConfig.for_arch(arch)``) on
    architecture *arch* (duck-typed ArchStrategy: ``kernel_package``, ``debian_arch``), built first
    if missing (~2.5-4 min cold)."""
    say = progress or (lambda _msg: None)
    config = config or FullGuestConfig.for_arch(arch)
    key = _key(config, _versions(config, arch, say), payload)
    parent = paths.cache_root() / "fullguest"
    final = parent / key
    found = _load(final)
    if found:
        return found
    with cache.locked(parent / f"{key}.lock"):
        found = _load(final)
        if found:
            return found
        cache.remove_stale_temps(parent, key)
        cache.sweep_scratch(parent, label="tree", before_remove=_unmount_under)
        import time

        started = time.monotonic()
        with cache.building_dir(final) as out, cache.scratch_dir(parent, "tree") as scratch:
            meta = _build(config, arch, payload, key, scratch, out, say)
            meta["build_seconds"] = round(time.monotonic() - started, 1)
            cache.write_json_atomic(out / "fullguest.json", meta)
        say(f"full guest built in {time.monotonic() - started:.0f} s")
    found = _load(final)
    if found is None:
        raise ImageError(f"the full guest {key} was built but {final} is incomplete")
    return found


def _debootstrap(config: FullGuestConfig, debian_arch: str, root: Path, say: Progress) -> None:
    debs = paths.cache_root() / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    argv = ["debootstrap", "--variant=minbase", f"--arch={debian_arch}", f"--include={','.join(config.packages)}",
            f"--cache-dir={debs}", config.suite, str(root), mirror()]
    last = ""
    for attempt in range(1, DEBOOTSTRAP_TRIES + 1):
        say(f"debootstrap {config.suite} (minbase + {len(config.packages)} packages), try {attempt}: "
            f"~2.5 min cold, ~1.5 min with downloads cached")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        except FileNotFoundError:
            raise ImageError("debootstrap is not installed (run `make setup`)") from None
        if proc.returncode == 0:
            return
        log = root / "debootstrap" / "debootstrap.log"
        text = log.read_text(errors="replace") if log.exists() else proc.stderr or proc.stdout
        last = "\n".join(text.strip().splitlines()[-8:])
        shutil.rmtree(root, ignore_errors=True)
    raise ImageError(f"debootstrap of {config.suite} from {mirror()} failed {DEBOOTSTRAP_TRIES} times "
                     f"(a stale or unreachable mirror? set GUESTCOMPAT_DEBIAN_MIRROR to another one):\n{last}")


def _build(config: FullGuestConfig, arch: Any, payload: ProbePayload, key: str, scratch: Path, out: Path,
           say: Progress) -> dict:
    root = scratch / "root"
    try:
        _debootstrap(config, arch.debian_arch, root, say)
    finally:
        _unmount_under(root)
    kernels = sorted(p.name.removeprefix("vmlinuz-") for p in (root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise ImageError(f"the guest tree should hold one kernel, found {kernels or 'none'} in /boot")
    say("configuring the guest (networkd, probe unit, trimmed units)")
    write_guest_files(root, config, payload, machine_id=key)
    modules = resolve_modules(read_aliases(root / "lib/modules" / kernels[0] / "modules.alias"),
                              storage_modaliases(dict.fromkeys((config.controller, *config.boot_controllers)),
                                                 config.also_boots_on), config.fs_type)
    say(f"mkinitramfs with only {', '.join(modules)} (and their dependencies)")
    write_text_files(root, initramfs_conf(modules))
    run_tool(["chroot", str(root), "mkinitramfs", "-o", f"/boot/initrd.img-{kernels[0]}", kernels[0]],
             what="mkinitramfs (in the guest tree)")
    # What a real guest would run once: units enabled through the guest's own systemctl.
    run_tool(["chroot", str(root), "systemctl", "enable", "systemd-networkd.service", "guestcompat-probe.service"],
             what="systemctl enable (in the guest tree)")
    run_tool(["chroot", str(root), "systemctl", "mask", *MASKED_UNITS], what="systemctl mask (in the guest tree)")
    installed = run_tool(["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
                         what="dpkg-query (in the guest tree)")
    packages = sorted(tuple(line.split("\t", 1)) for line in installed.splitlines() if "\t" in line)
    if not (root / "boot" / f"initrd.img-{kernels[0]}").is_file():
        raise ImageError(f"the guest tree has no initrd for its kernel {kernels[0]} in /boot")
    for leftover in (root / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    shutil.rmtree(root / "debootstrap", ignore_errors=True)
    root_uuid = str(uuid.UUID(key[:32]))
    size_mb = _tree_mb(root) + config.headroom_mb
    raw = scratch / "disk.raw"
    say(f"mke2fs -d: ext4 root file system of {size_mb} MiB")
    run_tool(["mke2fs", "-q", "-F", "-t", config.fs_type, "-L", "debian-root", "-U", root_uuid, "-d", str(root),
              str(raw), f"{size_mb}M"], what="mke2fs -d")
    vmdk = out / "debian12.vmdk"
    say("qemu-img convert -O vmdk (monolithic sparse)")
    run_tool(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicSparse",
              str(raw), str(vmdk)], what="qemu-img convert")
    vmx = out / "debian12.vmx"
    vmx.write_text(vmx_text(config, vmdk.name))
    return {"vmx": vmx.name, "vmdk": vmdk.name, "key": key, "root_uuid": root_uuid, "kernel_version": kernels[0],
            "packages": packages}


#: Units masked in the guest: they only cost boot time in a test VM (each unit
#: start is a few fork+execs, ~14 ms each under TCG, plus its own work) and none
#: of them is what the tests look at: no getty or logind (nobody logs in, and
#: nothing but the probe writes on the serial console); no timers that start
#: maintenance jobs; no fsck (the root is mounted read-only); nothing that needs
#: a writable root (journal flush, random seed, utmp); no pseudo file systems
#: nobody uses (debugfs, tracefs, configfs, fusectl, hugetlbfs, mqueue,
#: binfmt_misc); no pstore, no kernel-cmdline network generator (the network is
#: the .network file); open-vm-tools' daemons and its vmblock FUSE mount are not
#: needed by vmware-checkvm, which talks to the backdoor itself.
#: Kept: udev, journald, networkd and its wait-online (what the tests assert), tmpfiles.
MASKED_UNITS = ("getty.target", "serial-getty@ttyS0.service", "getty@tty1.service", "systemd-logind.service",
                "systemd-user-sessions.service", "apt-daily.timer",
                "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
                "dpkg-db-backup.timer", "systemd-fsck-root.service", "systemd-tmpfiles-clean.timer",
                "systemd-journal-flush.service", "systemd-random-seed.service", "systemd-update-utmp.service",
                "systemd-update-utmp-runlevel.service", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
                "sys-kernel-config.mount", "sys-fs-fuse-connections.mount", "dev-hugepages.mount", "dev-mqueue.mount",
                "proc-sys-fs-binfmt_misc.automount", "systemd-binfmt.service", "systemd-pstore.service",
                "systemd-network-generator.service", "kmod-static-nodes.service",
                "open-vm-tools.service", "vgauth.service", "run-vmblock\\x2dfuse.mount")


def _unmount_under(root: Path) -> None:
    """Unmount what debootstrap mounted inside *root* (/proc, /sys, ...) if it died before doing it.

    A killed debootstrap leaves ``root/proc`` mounted; removing the scratch tree would then walk
    the host's /proc, and mke2fs -d would copy it.
    """
    prefix = str(root.resolve()) + "/"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1].replace("\\040", " ") for line in lines if len(line.split()) > 1]
    for target in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def _tree_mb(root: Path) -> int:
    """Space the tree needs in ext4 (4 KiB blocks per file, inodes), rounded up generously."""
    blocks = 0
    inodes = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            inodes += 1
            st = os.lstat(os.path.join(dirpath, name))
            blocks += (st.st_size + 4095) // 4096
    return (blocks * 4096 + inodes * 256) // (1 << 20) + 64


#: Where the boot matrix puts the root disk (``controller_vmx``): the .vmx settings of each VMware
#: storage controller, at the slot VMware gives it in a hardware-13 VM (LSI Logic Parallel at 00:10.0,
#: SAS and PVSCSI behind the first root port, SATA at 02:01.0, NVMe behind the third root port,
#: IDE on the PIIX4's primary channel).
BOOT_BUSES: dict[str, dict[str, str]] = {
    "pvscsi": {"scsi0.virtualDev": "pvscsi", "scsi0.pciSlotNumber": "160", "disk": "scsi0:0"},
    "lsilogic": {"scsi0.virtualDev": "lsilogic", "scsi0.pciSlotNumber": "16", "disk": "scsi0:0"},
    "lsisas1068": {"scsi0.virtualDev": "lsisas1068", "scsi0.pciSlotNumber": "160", "disk": "scsi0:0"},
    "sata": {"sata0.pciSlotNumber": "33", "disk": "sata0:0"},
    "nvme": {"nvme0.pciSlotNumber": "224", "disk": "nvme0:0"},
    "ide": {"disk": "ide0:0"},
}


def _storage_lines(bus: str, vmdk_name: str) -> dict[str, str]:
    settings = dict(BOOT_BUSES[bus])
    disk = settings.pop("disk")
    controller = disk.split(":")[0]
    lines = {} if bus == "ide" else {f"{controller}.present": "TRUE"}
    lines.update(settings)
    lines.update({f"{disk}.present": "TRUE", f"{disk}.deviceType": "disk" if bus in ("sata", "nvme", "ide")
                  else "scsi-hardDisk", f"{disk}.fileName": vmdk_name})
    return lines


def controller_vmx(guest: FullGuest, bus: str) -> Path:
    """The guest's .vmx with its root disk on *bus* (a key of BOOT_BUSES), beside the VMDK: the same
    VM as if VMware had been told to put the disk there (written once, atomically)."""
    if bus not in BOOT_BUSES:
        raise ImageError(f"unknown boot bus {bus!r} (known: {', '.join(BOOT_BUSES)})")
    path = guest.directory / f"debian12-{bus}.vmx"
    if not path.exists():
        original = guest.vmx.read_text()
        kept = [line for line in original.splitlines(keepends=True)
                if not line.startswith(("scsi0.", "scsi0:"))]
        extra = "".join(f'{k} = "{v}"\n' for k, v in _storage_lines(bus, guest.vmdk.name).items())
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text("".join(kept) + extra)
        os.replace(tmp, path)
    return path


def vmx_text(config: FullGuestConfig, vmdk_name: str) -> str:
    """The .vmx VMware writes for this VM: hardware version 13, pvscsi, vmxnet3 in slot 192 (ens192)."""
    lines = {
        ".encoding": "UTF-8",
        "config.version": "8",
        "virtualHW.version": "13",
        "displayName": config.hostname,
        "guestOS": "debian12-64",
        "memSize": str(config.memory_mb),
        "numvcpus": "1",
        "firmware": "bios",
        "uuid.bios": config.uuid_bios,
        "pciBridge0.present": "TRUE",
        "pciBridge4.present": "TRUE",
        "pciBridge4.virtualDev": "pcieRootPort",
        "pciBridge4.functions": "8",
        "pciBridge5.present": "TRUE",
        "pciBridge5.virtualDev": "pcieRootPort",
        "pciBridge5.functions": "8",
        "vmci0.present": "TRUE",
        "scsi0.present": "TRUE",
        "scsi0.virtualDev": config.controller,
        "scsi0.pciSlotNumber": "160",
        "scsi0:0.present": "TRUE",
        "scsi0:0.deviceType": "scsi-hardDisk",
        "scsi0:0.fileName": vmdk_name,
        "ethernet0.present": "TRUE",
        "ethernet0.virtualDev": "vmxnet3",
        "ethernet0.pciSlotNumber": "192",
        "ethernet0.addressType": "vpx",
        "ethernet0.generatedAddress": config.mac,
    }
    return "".join(f'{k} = "{v}"\n' for k, v in lines.items())
