"""VMware's first power-on placement: the slot a device without ``pciSlotNumber`` will get.

Packer outputs, fresh VMs, templates and every OVF export carry devices
without a slot number: VMware assigns one when the VM first powers on and
writes it back.  Refusing to place those devices loses the normal case, so
the importer predicts the number with the rules of
``profiles/catalog/vmware-placement.toml`` (derived from real descriptors
that do carry numbers; the file lists them) and marks each such placement
*predicted*: the profile says so per device, the fidelity report lists them
apart, and the import's inferred lines name the rule.  A read slot number is
never replaced, and every number a descriptor already uses is skipped, as
VMware skips it.

The product matters (ESXi puts PCIe devices on the root ports and numbers
VMCI, Workstation puts USB first behind the bridge): :func:`guess_product`
tells it from the keys each product writes, and says when it cannot.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

PRODUCTS = ("esxi", "esxi-acpi", "desktop", "legacy")


@dataclass(frozen=True)
class Pending:
    """A present device the descriptor gives no usable slot number."""

    prefix: str            # ethernet0, scsi1, usb, sound …
    family: str            # ethernet, scsi, usb …
    index: int
    virtual_dev: str | None = None


@dataclass(frozen=True)
class Predicted:
    prefix: str
    slot: int              # in .vmx terms (pciSlotNumber)
    basis: str             # the rule, one sentence


@dataclass(frozen=True)
class ProductGuess:
    product: str           # esxi | esxi-acpi | desktop (hardware 7+) | legacy (3-6)
    evidence: tuple[str, ...]
    recognised: bool


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    text = resources.files("guestcompat.profiles").joinpath("catalog", "vmware-placement.toml").read_text()
    return tomllib.loads(text)


def guess_product(vmx: Mapping[str, str], hardware_version: int) -> ProductGuess:
    """Which VMware product wrote the descriptor, from the keys and values only it writes."""
    if hardware_version < 7:
        return ProductGuess("legacy", (f"hardware version {hardware_version}",), True)
    if vmx.get("chipset.motherboardlayout", "").strip().lower() == "acpi":
        return ProductGuess("esxi-acpi", ("chipset.motherboardLayout = acpi",), True)
    hints = rules()["product"]
    score = {"esxi": [], "desktop": []}
    for product in ("esxi", "desktop"):
        for prefix in hints[f"{product}_keys"]:
            hit = next((k for k in vmx if k.startswith(prefix)), None)
            if hit:
                score[product].append(hit)
        values = hints[f"{product}_values"]
        for key, value in vmx.items():
            low = value.strip().lower()
            hit = next((v for v in values if (low == v.lower() if not v.startswith(("/", ".")) else v.lower() in low)),
                       None)
            if hit and f"{key} = {hit}" not in score[product]:
                score[product].append(f"{key} = {hit}")
    esxi, desktop = len(score["esxi"]), len(score["desktop"])
    if esxi == desktop:
        return ProductGuess(hints["default"], tuple(score["esxi"] + score["desktop"]), False)
    product = "esxi" if esxi > desktop else "desktop"
    return ProductGuess(product, tuple(score[product][:4]), True)


def device_class(family: str, virtual_dev: str | None) -> str:
    """``pcie`` or ``pci``: which pool the device draws from."""
    classes = rules()["classes"]
    spelled = f"{family}:{virtual_dev}" if virtual_dev else family
    if spelled in classes["pcie"] or family in classes["pcie"]:
        return "pcie"
    return "pci"


def _rule(product: str) -> dict[str, Any]:
    return rules()["rules"][product]


def predict(pending: list[Pending], used: set[int], hardware_version: int, product: str) -> list[Predicted]:
    """A slot number for each pending device, in VMware's order, skipping the ``used`` ones.

    A device the rule cannot place (its pool is full) is left out; the caller reports it."""
    rule = _rule(product)
    pools = {name: [n for n in numbers if n not in used] for name, numbers in rules()["pools"].items()}
    order = {family: position for position, family in enumerate(rule["order"])}
    bus0_first = set(rules()["classes"]["bus0_first"])
    bus0_taken = 16 in used
    out: list[Predicted] = []
    numbered_vmci = hardware_version <= rule.get("vmci_numbered_until", 0)
    for device in sorted(pending, key=lambda d: (order.get(d.family, len(order)), d.index)):
        if device.family == "vmci" and not numbered_vmci:
            continue
        spelled = f"{device.family}:{device.virtual_dev}" if device.virtual_dev else device.family
        if not bus0_taken and spelled in bus0_first and hardware_version >= 7:
            pool, why = "bus0", "the first LSI Logic/BusLogic adapter sits at 00:10.0"
            bus0_taken = True
        else:
            kind = device_class(device.family, device.virtual_dev)
            pool = rule[kind]
            why = {"root": "a PCI Express device goes on the next free root port",
                   "bridge": "a PCI device goes on the next free slot behind pciBridge0",
                   "bus0": "every device of this hardware version is on bus 0"}[pool]
        free = pools[pool]
        if not free:
            continue
        slot = free.pop(0)
        out.append(Predicted(device.prefix, slot, f"{rule['summary'].split(':')[0]}: {why}"))
    return out


def guest_slot(slot: int) -> int:
    """The physical slot number the guest reads for a device at .vmx slot ``slot`` (ens<N>)."""
    if slot >= 1024:
        function, base = divmod(slot, 1024)
        return base + function
    return slot
