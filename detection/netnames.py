"""How a systemd guest names a NIC, predicted from where the NIC sits.

systemd's net_id builtin (src/udev/udev-builtin-net_id.c) prefers, for a PCI
NIC without a firmware onboard index: the *slot* name ``ens<slot>`` when the
kernel lists a physical slot for the device (``/sys/bus/pci/slots``), else the
*path* name ``enp<bus>s<device>``; ``f<function>`` is appended for functions
other than 0 of a multi-function device. This is why a VMware guest's NIC
behind root port 00:16.0 (slot 192) is ``ens192`` and one behind the PCI
bridge at 02:01.0 (slot 33) is ``ens33``, and why losing the slot number on
migration renames it to ``enp11s0``.

VMware's absurd onboard indexes (``eno16777736``, systemd ignores indexes
above 16383 since v230-ish) are not modelled: profiles describe guests of
systemd versions that ignore them.
"""

from __future__ import annotations


def predicted_name(bus: int, device: int, function: int, physical_slot: int | None,
                   multifunction: bool = False) -> str:
    """The interface name systemd's default naming scheme gives this NIC."""
    suffix = f"f{function}" if function or multifunction else ""
    if physical_slot is not None:
        return f"ens{physical_slot}{suffix}"
    return f"enp{bus}s{device}{suffix}"
