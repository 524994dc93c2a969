"""Check a compiled argv against what the target's QEMU binary accepts.

Runs on the argv the compiler is about to return, so every option is checked
the way QEMU will read it: the machine type and its properties, each
``-device`` driver and property, ``-global`` driver.property pairs,
``-object`` types and properties, and the ``-cpu`` model.  A miss becomes a
CompileError naming the profile key (``pci.devices[ethernet0]``), the binary
and its version: the profile is refused before anything boots.
"""

from __future__ import annotations

from guestcompat.emulation.capabilities import Capabilities
from guestcompat.emulation.qemuopts import parse_option, split
from guestcompat.errors import CompileError
from guestcompat.profiles.model import Profile

# Options QEMU's own option parsers take off before the QOM properties are set.
GENERIC = {"-device": {"id", "bus", "driver"}, "-object": {"id", "qom-type"}, "-machine": {"type", "accel"}}


def profile_keys(profile: Profile) -> dict[str, str]:
    """QEMU id (= profile entry name) → the profile key that asked for it."""
    keys: dict[str, str] = {}
    for section, items in (("pci.bridges", profile.pci.bridges), ("pci.devices", profile.pci.devices),
                           ("vio.devices", profile.vio.devices), ("disks", profile.disks)):
        for item in items:
            keys[item.name] = f"{section}[{item.name}]"
    for bridge in profile.pci.bridges:  # a multi-function bridge's functions are <name>-<n> (bridges/topology.py)
        for n in range(bridge.functions):
            keys.setdefault(f"{bridge.name}-{n}", f"pci.bridges[{bridge.name}]")
    for disk in profile.disks:
        if disk.limits is not None:
            keys[f"throttle-{disk.name}"] = f"disks[{disk.name}].limits"
    return keys


#: Linux refuses to exec an argument longer than MAX_ARG_STRLEN (32 pages, NUL included): E2BIG.
MAX_ARG_BYTES = 32 * 4096 - 1
#: What the compiled argv may use of ARG_MAX (2 MiB with an 8 MiB stack): the run adds its own options
#: and the environment shares the budget.
MAX_ARGV_BYTES = 1 << 20


def check_argv_size(argv: tuple[str, ...] | list[str]) -> None:
    """Refuse at compile time what ``exec`` would refuse with E2BIG (a 200,000-character SMBIOS string)."""
    total = 0
    for i, arg in enumerate(argv):
        size = len(arg.encode("utf-8", "surrogateescape")) + 1
        total += size
        if size > MAX_ARG_BYTES:
            option = argv[i - 1] if i and argv[i - 1].startswith("-") else "argument"
            raise CompileError(f"{option} {arg[:60]}...: {size} bytes; Linux passes at most {MAX_ARG_BYTES} bytes "
                               f"per argument to QEMU (a profile string is far too long)")
    if total > MAX_ARGV_BYTES:
        raise CompileError(f"the compiled QEMU argv is {total} bytes; at most {MAX_ARGV_BYTES} can be passed "
                           f"(the profile's strings are far too long)")


def check_argv(argv: tuple[str, ...] | list[str], caps: Capabilities, profile: Profile) -> None:
    keys = profile_keys(profile)
    where = f"unsupported by this QEMU ({caps.label})"
    i = 1
    while i < len(argv) - 1:
        option, value = argv[i], argv[i + 1]
        if option == "-machine":
            machine, props = split(value)
            if machine not in caps.machines:
                raise CompileError(f"platform: {where}: machine type {machine!r} does not exist "
                                   f"(this build has {len(caps.machines)} machine types)")
            _props(caps.machine_properties.get(machine), props, GENERIC["-machine"],
                   f"platform: {where}: machine type {machine!r}")
        elif option == "-device":
            driver, props = split(value)
            key = keys.get(props.get("id", ""), "the compiled machine")
            if not caps.has_device(driver):
                raise CompileError(f"{key}: {where}: device {driver!r} does not exist in this build")
            _props(caps.device_properties.get(driver), props, GENERIC["-device"], f"{key}: {where}: device {driver!r}")
        elif option == "-global":
            _, props = parse_option(option, value)
            for name in props:
                driver, _, prop = name.partition(".")
                if driver in caps.cpu_models.values() and driver not in caps.device_properties:
                    continue  # a CPU model's QOM type (-global carries the brand string): the -cpu check names it
                if not caps.has_device(driver):
                    raise CompileError(f"platform: {where}: device {driver!r} (of -global {name}) does not exist")
                _props(caps.device_properties.get(driver), {prop: ""}, set(), f"platform: {where}: device {driver!r}")
        elif option == "-object":
            typename, props = split(value)
            key = keys.get(props.get("id", ""), "the compiled machine")
            known = caps.object_properties.get(typename)
            if known is None:
                raise CompileError(f"{key}: {where}: object type {typename!r} does not exist in this build")
            _props(known, props, GENERIC["-object"], f"{key}: {where}: object {typename!r}")
        elif option == "-cpu":
            if ",," in value:
                raise CompileError(f"cpu: {value[:60]!r}: QEMU's -cpu parser splits on every comma; a value "
                                   f"with a comma cannot go on -cpu (free text goes on -global)")
            model, _ = split(value)
            if model not in caps.cpu_models:
                raise CompileError(f"cpu: {where}: CPU model {model!r} does not exist "
                                   f"(this build has {len(caps.cpu_models)} CPU models)")
        i += 1


def _props(known: tuple[str, ...] | None, props: dict[str, str], generic: set[str], what: str) -> None:
    if known is None:  # not probed in detail: existence was all we could check
        return
    for prop in props:
        if prop not in known and prop not in generic:
            raise CompileError(f"{what} has no property {prop!r}")
