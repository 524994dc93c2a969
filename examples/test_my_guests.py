"""Copy this file into your own CI to check that your guests keep seeing the same machine.

    pip install guestcompat            # brings the pytest plugin (entry point pytest11)
    pytest examples/test_my_guests.py                                  # compare with baselines/
    pytest examples/test_my_guests.py --guestcompat-update-baselines   # (re)record baselines/
    pytest -n 2 examples/test_my_guests.py                             # pytest-xdist: one boot per profile and worker

Each profile boots once per session (per xdist worker); every test of that
profile looks at the same boot. Put your own profiles on
GUESTCOMPAT_PROFILE_PATH (see README.md, "Profiles").
"""

import pytest

MY_GUESTS = pytest.mark.guestcompat_profiles("vmware/esxi-6.5", "vmware/esxi-6.0")


@MY_GUESTS
def test_guest_sees_the_profiled_machine(guestcompat_outcome):
    """No mismatch between what the profile asks and what the guest saw (known deviations are fine)."""
    counts = guestcompat_outcome.counts()
    assert guestcompat_outcome.passed, f"{counts['fail']} mismatches, see `guestcompat run {guestcompat_outcome.compiled.profile.name}`"


@MY_GUESTS
def test_nic_keeps_its_vmware_mac(guestcompat_fingerprint):
    """The guest's NICs carry VMware's OUI, so MAC-bound licences and udev rules survive the move."""
    macs = [nic.mac for nic in guestcompat_fingerprint.net if nic.pci]  # PCI NICs, not lo
    assert macs and all(mac.startswith("00:50:56") for mac in macs), macs


@MY_GUESTS
def test_same_machine_as_the_recorded_baseline(guestcompat_outcome, guestcompat_baseline):
    """Any change since the recorded baseline (a QEMU upgrade, a profile edit) fails with what changed."""
    guestcompat_baseline(guestcompat_outcome)


def test_a_specific_target(guestcompat_boot):
    """The factory fixture, for targets the marker does not cover."""
    outcome = guestcompat_boot("power/pseries-vscsi", arch="ppc64")
    assert outcome.passed
