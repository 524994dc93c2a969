"""How Windows sees a machine guestcompat knows, and what a move means to it.

Windows does not care about bus numbers or BARs; it names every PCI function
by its ids and where it sits (or by its serial number), keeps a device's
settings under that name, and boots only if the disk controller's name (or a
boot-start driver for its ids) survives the move. These modules model that
from what guestcompat already has (a profile's PCI tree, a booted
fingerprint, a Windows-side capture):

* :mod:`.ids`: hardware ids, compatible ids, instance ids (location and
  serial-number forms), device serial numbers derived from MACs;
* :mod:`.drivers`: the driver catalogue (``drivers.toml``: inbox, VMware
  Tools, virtio-win, per Windows version, each entry with its source);
* :mod:`.view`: :class:`~.view.WindowsView`, one machine as Windows names it;
* :mod:`.sources`: views of a profile, a predicted QEMU target, a fingerprint;
* :mod:`.verdict`: source vs target: same / new / gone, boot, NICs (:mod:`.activation`: what activation notices);
* :mod:`.report`: text, JSON and JUnit of a verdict.

What cannot be computed is said so, never guessed: the parent-id prefix hash
(``3&61aaa01&0``) is not public, so it is an opaque token keyed by the
parent's instance path, and a real value from a capture is kept as is.
"""
