"""Render a compiled machine as libvirt domain XML.

The compiled QEMU argv is the single source of truth: this module maps each
option back to the libvirt element that makes libvirt emit it (``-smbios
type=1`` → ``<sysinfo><system>``, ``-device vmxnet3`` → ``<interface>``, …)
instead of re-deriving the machine from the profile, so the two backends
cannot drift apart. What libvirt 9.0 cannot express goes verbatim through
``<qemu:commandline>`` (or, for one device property, ``<qemu:override>``) and
is listed with the reason in :attr:`LibvirtDomain.passthrough`; nothing is
dropped silently. Which QEMU device models libvirt knows, and where it
refuses them, is data (profiles/catalog/libvirt.toml).

Every device gets a user alias (``ua-<QEMU id>``): libvirt uses it as the
QEMU id, so passed-through devices can name libvirt's buses.

Files a run supplies (kernel, initrd, console log, disk backing files,
artefacts) are placeholders (``@boot/kernel``, ``@disk/disk0.raw``,
``@artefact/…``) in compile output, so golden files stay deterministic;
:class:`RunFiles` replaces them.
"""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from guestcompat.detection.smbios_fields import SECTIONS as SMBIOS_SECTIONS
from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.emulation.fidelity import UNKNOWN, FidelityReport
from guestcompat.emulation.report import binary_placeholder, display
from guestcompat.emulation.qemuopts import global_property, pairs, parse, split_global
from guestcompat.errors import CompileError

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
ET.register_namespace("qemu", QEMU_NS)
ACCEL_DOMAIN_TYPE = {"tcg": "qemu", "kvm": "kvm"}
FLAGS = {"-nodefaults", "-no-user-config"}
ALIAS_PREFIX = "ua-"
# -smbios type → (libvirt <sysinfo> child, QEMU key → libvirt entry name): libvirt names each entry
# like QEMU's key (detection/smbios_fields.py lists the keys).
SYSINFO = {str(s.type): (s.libvirt, {f.qemu_key: f.qemu_key for f in s.fields if f.qemu_key})
           for s in SMBIOS_SECTIONS if s.libvirt}
CONSOLE_CHARDEV = "console"
#: Disk devices of the buses the XML does not model (SATA, IDE, NVMe, CD-ROMs): passed through whole.
PASSED_DISK_DEVICES = ("ide-hd", "ide-cd", "nvme-ns", "scsi-cd")
#: Buses the machine itself creates (the PIIX IDE channels): libvirt names them as QEMU does.
MACHINE_BUSES = ("ide.",)
# Device properties that are strings even when they look like numbers (scsi-hd ver=0001).
STRING_PROPERTIES = {"ver", "vendor", "product", "serial", "netdev"}


@dataclass(frozen=True)
class Passthrough:
    """Options that reach QEMU through ``<qemu:commandline>`` / ``<qemu:override>``, and why."""

    args: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class RunFiles:
    """What a run substitutes for compile output's placeholders."""

    kernel: str
    initrd: str
    cmdline: str
    console: str
    """File the guest console is written to (on the libvirt host)."""
    disk_dir: str
    """Directory for the disks' backing files (the runner creates them, see :attr:`LibvirtDomain.disks`)."""
    artefacts: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    disk_prefix: str = ""
    """Put before each disk's file name: a remote host's disks are volumes of one shared pool."""
    console_pty: bool = False
    """The serial console as a pty the runner reads with ``virDomainOpenConsole`` (a remote host's
    files cannot be read); architectures whose console goes through ``<qemu:commandline>`` keep
    writing ``console``, which libvirt does not know about."""


@dataclass(frozen=True)
class DiskFile:
    path: str
    size: int
    """Bytes of the sparse raw file standing in for QEMU's ``null-co`` (reads zeroes, like it)."""


@dataclass(frozen=True)
class LibvirtDomain:
    xml: str
    name: str
    passthrough: tuple[Passthrough, ...]
    disks: tuple[DiskFile, ...]
    """Backing files the runner creates before defining the domain."""
    host_side: tuple[str, ...]
    """Differences only the host sees (how a disk is backed, the NIC's user-mode network)."""
    guest_visible: tuple[str, ...] = ()
    """What libvirt changes in the guest's view (see :func:`libvirt_report`)."""
    disk_targets: tuple[tuple[str, str], ...] = ()
    """(libvirt target dev, disk name): libvirt's messages name disks by target dev."""


@lru_cache(maxsize=1)
def _models() -> dict:
    return tomllib.loads(resources.files("guestcompat.profiles").joinpath("catalog", "libvirt.toml").read_text())


def _split(argv: tuple[str, ...]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    i = 1
    while i < len(argv):
        opt = argv[i]
        if opt in FLAGS:
            out.append((opt, None))
            i += 1
        else:
            out.append((opt, argv[i + 1]))
            i += 2
    return out


def _props(value: str) -> tuple[str | None, dict[str, str]]:
    head: str | None = None
    props: dict[str, str] = {}
    for key, val in parse(value):
        if key is None:
            head = val
        else:
            props[key] = val
    return head, props


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _pci_address(parent: ET.Element, bus_index: int, addr: str, multifunction: bool) -> None:
    slot, _, function = addr.partition(".")
    attrs = {"type": "pci", "domain": "0x0000", "bus": f"{bus_index:#04x}", "slot": f"{int(slot, 16):#04x}",
             "function": f"{int(function or '0', 16):#x}"}
    if multifunction:
        attrs["multifunction"] = "on"
    _sub(parent, "address", **attrs)


class _Renderer:
    def __init__(self, compiled: CompiledMachine, files: RunFiles | None) -> None:
        self.c = compiled
        self.files = files
        self.passthrough: list[Passthrough] = []
        self.host_side: list[str] = []
        self.disks: list[DiskFile] = []
        self.root_bus = "pci.0"
        self.pci_index: dict[str, int] = {self.root_bus: 0}
        self.scsi_index: dict[str, int] = {}
        self.passed_ids: set[str] = set()
        self.netdevs: dict[str, dict[str, str]] = {}
        self.audiodevs: dict[str, dict[str, str]] = {}
        self.blockdevs: dict[str, dict[str, str]] = {}
        self.objects: dict[str, tuple[str | None, dict[str, str]]] = {}
        self.overrides: list[tuple[str, str, str]] = []
        self.domain = ET.Element("domain", {"type": ACCEL_DOMAIN_TYPE.get(compiled.target.accel, "qemu")})
        self.disk_count = 0
        self.disk_targets: list[tuple[str, str]] = []

    # -- helpers -----------------------------------------------------------------------------
    def pass_through(self, args: list[str], reason: str) -> None:
        self.passthrough.append(Passthrough(tuple(args), reason))

    def path(self, placeholder: str, real: str | None) -> str:
        return real if real is not None else placeholder

    # -- top level ---------------------------------------------------------------------------
    def render(self) -> LibvirtDomain:
        c, d = self.c, self.domain
        profile_name = c.profile.name.replace("/", "-")
        name = (self.files.name if self.files and self.files.name else f"guestcompat-{profile_name}")
        _sub(d, "name", name)
        self.uuid = _sub(d, "uuid")
        self.memory = _sub(d, "memory", unit="MiB")
        self.vcpu = _sub(d, "vcpu", placement="static")
        self.sysinfo = ET.Element("sysinfo", type="smbios")
        self.os = _sub(d, "os")
        self.os_type = _sub(self.os, "type", "hvm", arch=c.arch.name)
        self.features = _sub(d, "features")
        for feature in c.arch.libvirt_features:
            _sub(self.features, feature)
        self.cpu: ET.Element | None = None
        self.cpu_model: str | None = None
        _sub(d, "on_poweroff", "destroy")
        _sub(d, "on_reboot", "destroy")
        _sub(d, "on_crash", "destroy")
        self.devices = _sub(d, "devices")
        if c.target.qemu_binary:
            _sub(self.devices, "emulator", c.argv[0] if self.files else binary_placeholder(c))
        _sub(self.devices, "controller", type="usb", model="none")
        for opt, value in _split(c.argv):
            self.option(opt, value)
        self.boot()
        self.console()
        _sub(self.devices, "memballoon", model="none")
        if not self.uuid.text:
            d.remove(self.uuid)
        if len(self.sysinfo):
            d.insert(list(d).index(self.os), self.sysinfo)
            _sub(self.os, "smbios", mode="sysinfo")
        if not len(self.features):
            d.remove(self.features)
        self.qemu_elements()
        ET.indent(d)
        xml = ET.tostring(d, encoding="unicode") + "\n"
        guest_visible = () if "-uuid" in c.argv else (
            f"{LIBVIRT_UUID_REASON} ({', '.join(c.arch.uuid_selectors)})",)
        return LibvirtDomain(xml, name, tuple(self.passthrough), tuple(self.disks), tuple(self.host_side),
                             guest_visible, tuple(self.disk_targets))

    def option(self, opt: str, value: str | None) -> None:
        if opt in FLAGS or opt == "-display":
            return  # libvirt always runs QEMU with -nodefaults -no-user-config, and -display none without <graphics>
        assert value is not None
        if not self.files:
            value = display(self.c, value)  # compile output: a cached firmware's path as its placeholder
        handler = {"-machine": self.machine, "-cpu": self.cpu_opt, "-smp": self.smp, "-m": self.mem,
                   "-uuid": self.uuid_opt, "-smbios": self.smbios, "-bios": self.bios, "-device": self.device,
                   "-netdev": self.netdev, "-audiodev": self.audiodev, "-blockdev": self.blockdev, "-object": self.object,
                   "-global": self.global_opt}.get(opt)
        if handler is None:
            reasons = _models()["passthrough_reasons"]
            prefix = f"{opt} {value.split('.', 1)[0]}"
            self.pass_through([opt, value], reasons.get(prefix) or reasons.get(opt) or f"libvirt has no element for {opt}")
            return
        handler(value)

    def machine(self, value: str) -> None:
        head, props = _props(value)
        self.os_type.set("machine", head or self.c.target.machine)
        props.pop("accel", None)  # the domain type
        if "vmport" in props:
            _sub(self.features, "vmport", state=props.pop("vmport"))
        if props:
            self.pass_through(["-machine", pairs(None, list(props.items()))],
                              f"libvirt has no element for machine properties {', '.join(props)}")

    def cpu_opt(self, value: str) -> None:
        model, props = _props(value)
        assert model is not None
        cpu = _sub(self.domain, "cpu", mode="custom", match="exact", check="none")
        self.domain.remove(cpu)
        self.domain.insert(list(self.domain).index(self.features) + 1, cpu)
        model_el = _sub(cpu, "model", _models().get("cpu_models", {}).get(model, model), fallback="forbid")
        if "vendor" in props:
            model_el.set("vendor_id", props.pop("vendor"))
        for feature in [k for k, v in props.items() if v in ("on", "off") and k == "hypervisor"]:
            _sub(cpu, "feature", policy="disable" if props.pop(feature) == "off" else "require", name=feature)
        self.cpu_model = model
        qom = self.c.arch.cpu_qom_type(model)
        for key, val in props.items():
            self.pass_through(["-global", global_property(qom, key, val)],
                              f"libvirt's <cpu> has no setting for the CPU property {key}")

    def global_opt(self, value: str) -> None:
        """Verbatim (the short form is literal on both backends); a CPU property says so."""
        short = split_global(value)
        driver = short[0].split(".", 1)[0] if short else ""
        if self.cpu_model is not None and driver == self.c.arch.cpu_qom_type(self.cpu_model):
            self.pass_through(["-global", value],
                              f"libvirt's <cpu> has no setting for the CPU property {short[0].split('.', 1)[1]}")
            return
        reasons = _models()["passthrough_reasons"]
        self.pass_through(["-global", value], reasons.get(f"-global {value.split('.', 1)[0]}")
                          or "libvirt has no element for -global")

    def smp(self, value: str) -> None:
        self.vcpu.text = value

    def mem(self, value: str) -> None:
        self.memory.text = value

    def uuid_opt(self, value: str) -> None:
        self.uuid.text = value

    def smbios(self, value: str) -> None:
        items = parse(value)
        smbios_type = dict((k, v) for k, v in items if k == "type").get("type")
        if smbios_type == "11":
            oem = _sub(self.sysinfo, "oemStrings")
            for key, val in items:
                if key == "value":
                    _sub(oem, "entry", val)
            return
        if smbios_type not in SYSINFO:
            self.pass_through(["-smbios", value], f"libvirt's <sysinfo> has no SMBIOS type {smbios_type}")
            return
        section, names = SYSINFO[smbios_type]
        el = _sub(self.sysinfo, section)
        rest = []
        for key, val in items:
            if key == "type":
                continue
            if key in names:
                _sub(el, "entry", val, name=names[key])
            else:
                rest.append((key, val))
        if rest:
            self.pass_through(["-smbios", pairs(f"type={smbios_type}", rest)],
                              f"libvirt's <sysinfo><{section}> has no entry for {', '.join(k for k, _ in rest if k)}")

    def bios(self, value: str) -> None:
        _sub(self.os, "loader", value, readonly="yes", type="rom")

    def netdev(self, value: str) -> None:
        head, props = _props(value)
        self.netdevs[props["id"]] = {"type": head or "", **props}

    def audiodev(self, value: str) -> None:
        head, props = _props(value)
        self.audiodevs[props["id"]] = {"type": head or "", **props}

    def blockdev(self, value: str) -> None:
        _, props = _props(value)
        self.blockdevs[props["node-name"]] = props

    def object(self, value: str) -> None:
        head, props = _props(value)
        self.objects[props["id"]] = (head, props)

    # -- devices -----------------------------------------------------------------------------
    def device(self, value: str) -> None:
        driver, props = _props(value)
        assert driver is not None
        if driver == "scsi-hd":
            self.disk(value, props)
            return
        if driver in PASSED_DISK_DEVICES:
            controller = props["bus"].rsplit(".", 1)[0]
            self.pass_disk(props, props.get("drive"), controller in self.passed_ids,
                           f"this XML carries SCSI disks only; QEMU's {driver} (SATA, IDE, NVMe, CD-ROM) is "
                           f"passed through", driver)
            return
        qemu_id = props["id"]
        model = _models()["devices"].get(driver)
        bus = props.get("bus", "")
        refused = (model or {}).get("refused", {}).get(self.c.target.machine)
        reason = None
        if model is None:
            reason = f"libvirt 9.0 has no device model for QEMU's {driver}"
        elif refused:
            reason = refused
        elif bus in self.passed_ids:
            reason = f"it plugs into {bus}, which is passed through"
        if reason:
            self.pass_device(driver, props, reason)
            return
        element = model["element"]
        extra = {k: v for k, v in props.items() if k not in ("id", "bus", "addr", "reg", "multifunction")}
        if element == "controller":
            el = self.controller(driver, model, props, extra)
        elif element == "interface":
            el = self.interface(model, props, extra)
        elif element == "sound":
            el = self.sound(model, props, extra)
        else:
            el = _sub(self.devices, "video")
            _sub(el, "model", type=model["model"], vram="16384", heads="1", primary="yes")
        self.address(el, props)
        _sub(el, "alias", name=ALIAS_PREFIX + qemu_id)
        for key, val in extra.items():
            self.overrides.append((ALIAS_PREFIX + qemu_id, key, val))

    def address(self, el: ET.Element, props: dict[str, str]) -> None:
        if "reg" in props:
            _sub(el, "address", type="spapr-vio", reg=props["reg"])
        elif "addr" in props:
            _pci_address(el, self.pci_index[props.get("bus", self.root_bus)], props["addr"],
                         props.get("multifunction") == "on")
        else:
            raise CompileError(f"device {props.get('id')}: no address in the compiled argv")

    def controller(self, driver: str, model: dict, props: dict[str, str], extra: dict[str, str]) -> ET.Element:
        if model["type"] == "pci":
            index = len(self.pci_index)
            self.pci_index[props["id"]] = index
            el = _sub(self.devices, "controller", type="pci", index=str(index), model=model["model"])
            _sub(el, "model", name=driver)
            target = _sub(el, "target")
            if "chassis_nr" in extra:
                target.set("chassisNr", extra.pop("chassis_nr"))
            if "chassis" in extra:
                target.set("chassis", extra.pop("chassis"))
            return el
        index = len(self.scsi_index)
        self.scsi_index[props["id"]] = index
        return _sub(self.devices, "controller", type=model["type"], index=str(index), model=model["model"])

    def interface(self, model: dict, props: dict[str, str], extra: dict[str, str]) -> ET.Element:
        netdev = self.netdevs[extra.pop("netdev")]
        if netdev["type"] != "user":
            raise CompileError(f"interface {props['id']}: libvirt rendering knows user-mode networking only")
        el = _sub(self.devices, "interface", type="user")
        if "mac" in extra:
            _sub(el, "mac", address=extra.pop("mac"))
        _sub(el, "model", type=model["model"])
        if netdev.get("restrict") == "on":
            # libvirt's <interface type="user"> has no restrict (9.0): its own netdev would let the guest reach
            # the host's loopback and network. The compiled, restricted netdev goes through <qemu:commandline>
            # and <qemu:override> plugs the NIC into it; libvirt's netdev is left without a peer.
            own = dict(netdev)
            self.pass_through(["-netdev", pairs(own.pop("type"), list(own.items()))],
                              "libvirt's <interface type=\"user\"> has no restrict=on: the NIC is plugged "
                              "(<qemu:override> netdev) into this restricted user network instead")
            self.overrides.append((ALIAS_PREFIX + props["id"], "netdev", netdev["id"]))
            self.host_side.append(f"{props['id']}: libvirt's own user-mode netdev (host{ALIAS_PREFIX}{props['id']}) "
                                  f"has no peer; the NIC uses the compiled restrict=on netdev {netdev['id']}")
        return el

    def sound(self, model: dict, props: dict[str, str], extra: dict[str, str]) -> ET.Element:
        """``<sound>`` with its own ``<audio>`` backend (libvirt numbers audio backends 1, 2, …)."""
        audiodev = dict(self.audiodevs[extra.pop("audiodev")])
        number = str(sum(1 for _ in self.devices.iter("audio")) + 1)
        backend = audiodev.pop("type")
        if backend != "none" or set(audiodev) != {"id"}:
            raise CompileError(f"sound device {props['id']}: libvirt rendering knows a silent audio backend only")
        _sub(self.devices, "audio", id=number, type="none")
        el = _sub(self.devices, "sound", model=model["model"])
        _sub(el, "audio", id=number)
        return el

    def pass_device(self, driver: str, props: dict[str, str], reason: str) -> None:
        self.passed_ids.add(props["id"])
        args: list[str] = []
        if "netdev" in props:
            netdev = dict(self.netdevs[props["netdev"]])
            args += ["-netdev", pairs(netdev.pop("type"), list(netdev.items()))]
        if "audiodev" in props:
            audiodev = dict(self.audiodevs[props["audiodev"]])
            args += ["-audiodev", pairs(audiodev.pop("type"), list(audiodev.items()))]
        bus = props.get("bus")
        if bus and bus != self.root_bus and bus not in self.passed_ids:
            props = {**props, "bus": ALIAS_PREFIX + bus}
        args += ["-device", pairs(driver, list(props.items()))]
        self.pass_through(args, reason)

    def disk(self, value: str, props: dict[str, str]) -> None:
        controller = props["bus"].rsplit(".", 1)[0]
        node = props["drive"]
        chain: list[str] = []
        current = self.blockdevs[node]
        limits: dict[str, str] = {}
        shared_group = None
        if current.get("driver") == "throttle":
            _, group = self.objects[current["throttle-group"]]
            limits = {k: v for k, v in group.items() if k != "id"}
            chain.append(current["throttle-group"])
            # a group several drives draw on (the VM-wide limits, issue 26): libvirt's <group_name>
            if sum(1 for arg in self.c.argv if f"throttle-group={chain[0]}" in arg.split(",")) > 1:
                shared_group = chain[0]
            current = self.blockdevs[current["file"]]
        iotune_names = _models()["iotune"]
        unmapped = [k for k in limits if k not in iotune_names]
        if controller in self.passed_ids or unmapped or current.get("driver") == "throttle":
            self.pass_disk(props, node, controller in self.passed_ids,
                           f"its controller {controller} is passed through" if controller in self.passed_ids else
                           f"libvirt's <iotune> has no element for {', '.join(unmapped)}" if unmapped else
                           "libvirt's <iotune> puts a disk in one throttle group; this disk has its own limits "
                           "and the VM's")
            return
        el = _sub(self.devices, "disk", type="file", device="disk")
        if current["driver"] == "null-co":
            _sub(el, "driver", name="qemu", type="raw")
            placeholder = f"@disk/{props['id']}.raw"
            path = (str(Path(self.files.disk_dir) / f"{self.files.disk_prefix}{props['id']}.raw") if self.files
                    else placeholder)
            self.disks.append(DiskFile(path, int(current["size"])))
            _sub(el, "source", file=path)
            self.host_side.append(f"{props['id']}: backed by a sparse raw file of the same size instead of QEMU's "
                                  f"null-co (both read zeroes)")
        else:
            image = self.blockdevs[current["file"]]
            _sub(el, "driver", name="qemu", type=current["driver"])
            _sub(el, "source", file=image["filename"])
            _sub(el, "readonly")
        dev = f"sd{chr(ord('a') + self.disk_count)}"
        self.disk_targets.append((dev, props["id"]))
        _sub(el, "target", dev=dev, bus="scsi")
        self.disk_count += 1
        if limits:
            iotune = _sub(el, "iotune")
            for key, val in limits.items():
                _sub(iotune, iotune_names[key], val)
            if shared_group:
                _sub(iotune, "group_name", shared_group)
        if props.get("vendor"):
            _sub(el, "vendor", props["vendor"])
        if props.get("product"):
            _sub(el, "product", props["product"])
        _sub(el, "alias", name=ALIAS_PREFIX + props["id"])
        _sub(el, "address", type="drive", controller=str(self.scsi_index[controller]), bus="0",
             target=props.get("scsi-id", "0"), unit="0")
        if props.get("ver"):
            self.overrides.append((ALIAS_PREFIX + props["id"], "ver", props["ver"]))

    def pass_disk(self, props: dict[str, str], node: str | None, controller_passed: bool, reason: str,
                  driver: str = "scsi-hd") -> None:
        args: list[str] = []
        current = self.blockdevs.get(node) if node else None
        stack = []
        while current is not None:
            stack.append(current)
            nxt = current.get("file")
            current = self.blockdevs.get(nxt) if nxt else None
        emitted = self.__dict__.setdefault("_emitted_groups", set())  # a group shared by several disks: once
        for blockdev in reversed(stack):
            if blockdev.get("driver") == "throttle" and blockdev["throttle-group"] not in emitted:
                emitted.add(blockdev["throttle-group"])
                head, group = self.objects[blockdev["throttle-group"]]
                args += ["-object", pairs(head, list(group.items()))]
            args += ["-blockdev", pairs(None, list(blockdev.items()))]
        bus = props["bus"]
        if not controller_passed and not bus.startswith(MACHINE_BUSES):
            props = {**props, "bus": ALIAS_PREFIX + bus}
        args += ["-device", pairs(driver, list(props.items()))]
        self.pass_through(args, reason)

    # -- how the run boots -------------------------------------------------------------------
    def boot(self) -> None:
        f = self.files
        _sub(self.os, "kernel", f.kernel if f else "@boot/kernel")
        _sub(self.os, "initrd", f.initrd if f else "@boot/initrd")
        cmdline = f.cmdline if f else " ".join((*self.c.arch.kernel_cmdline(), "@image-cmdline",
                                               *self.c.guest_cmdline))
        _sub(self.os, "cmdline", cmdline)

    def console(self) -> None:
        path = self.files.console if self.files else "@console"
        arch = self.c.arch
        if arch.libvirt_serial is not None:
            if self.files and self.files.console_pty:
                serial = _sub(self.devices, "serial", type="pty")
            else:
                serial = _sub(self.devices, "serial", type="file")
                _sub(serial, "source", path=path)
            target = _sub(serial, "target", type=arch.libvirt_serial, port="0")
            _sub(target, "model", name=arch.libvirt_serial)
            return
        self.pass_through(["-chardev", pairs("file", [("id", CONSOLE_CHARDEV), ("path", path)]),
                           *arch.console_args(CONSOLE_CHARDEV)], arch.libvirt_serial_reason)

    def qemu_elements(self) -> None:
        artefacts = self.files.artefacts if self.files else {}
        if self.passthrough:
            cmd = ET.SubElement(self.domain, f"{{{QEMU_NS}}}commandline")
            for item in self.passthrough:
                for arg in item.args:
                    for placeholder, real in artefacts.items():
                        arg = arg.replace(placeholder, real)
                    ET.SubElement(cmd, f"{{{QEMU_NS}}}arg", value=arg)
        if self.overrides:
            override = ET.SubElement(self.domain, f"{{{QEMU_NS}}}override")
            by_alias: dict[str, ET.Element] = {}
            for alias, key, val in self.overrides:
                if alias not in by_alias:
                    dev = ET.SubElement(override, f"{{{QEMU_NS}}}device", alias=alias)
                    by_alias[alias] = ET.SubElement(dev, f"{{{QEMU_NS}}}frontend")
                kind, typed = _typed(key, val)
                ET.SubElement(by_alias[alias], f"{{{QEMU_NS}}}property", name=key, type=kind, value=typed)
                self.passthrough.append(Passthrough((f"{alias}.{key}={val}",),
                                                    "libvirt has no element for this device property "
                                                    "(set through <qemu:override>)"))


def _typed(key: str, value: str) -> tuple[str, str]:
    """``<qemu:property>`` type and value: QEMU's JSON -device wants numbers as numbers, flags as booleans."""
    if key in STRING_PROPERTIES:
        return "string", value
    if value in ("on", "off"):
        return "bool", "true" if value == "on" else "false"
    try:
        return "unsigned", str(int(value, 0))
    except ValueError:
        return "string", value


LIBVIRT_UUID_REASON = ("libvirt always gives QEMU a -uuid: it generates one when the profile states none, "
                       "so the guest shows a random UUID where the direct backend shows none")


def libvirt_report(compiled: CompiledMachine) -> FidelityReport:
    """The fidelity report of ``compiled`` when booted through libvirt (what libvirt changes in the guest's view)."""
    if "-uuid" in compiled.argv:
        return compiled.report
    selectors = set(compiled.arch.uuid_selectors)
    return FidelityReport(tuple(
        replace(e, presented=UNKNOWN, reason=LIBVIRT_UUID_REASON) if e.selector in selectors else e
        for e in compiled.report.expectations))


def render(compiled: CompiledMachine, files: RunFiles | None = None) -> LibvirtDomain:
    """The domain XML of ``compiled``; without ``files``, run-time paths are placeholders."""
    return _Renderer(compiled, files).render()


def report_lines(domain: LibvirtDomain) -> list[str]:
    """The 'passed through qemu:commandline' section of the fidelity report."""
    lines = [f"passed through qemu:commandline / qemu:override ({len(domain.passthrough)}):"]
    by_reason: dict[str, list[str]] = {}
    for item in domain.passthrough:
        by_reason.setdefault(item.reason, []).append(" ".join(item.args))
    for reason, args in by_reason.items():
        lines.append(f"  {reason}")
        lines.extend(f"    {a}" for a in args)
    if domain.guest_visible:
        lines.append("what libvirt changes in the guest's view (known deviations of the libvirt backend):")
        lines.extend(f"  {g}" for g in domain.guest_visible)
    if domain.host_side:
        lines.append("host-side differences (not visible to the guest):")
        lines.extend(f"  {h}" for h in domain.host_side)
    return lines


__all__ = ["LibvirtDomain", "Passthrough", "RunFiles", "libvirt_report", "render", "report_lines"]
