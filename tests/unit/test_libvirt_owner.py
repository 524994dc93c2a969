"""Who owns a guestcompat domain (harness/libvirt_owner.py): only a domain this machine started from a
process that is gone counts as stale, so a sweep never touches a live run's or another machine's domain."""

from __future__ import annotations

import os
import subprocess
import sys

from guestcompat.harness import libvirt_owner as owner


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_name_says_machine_and_process():
    name = owner.domain_name("abcd1234")
    assert name == f"guestcompat-{owner.machine_tag()}-{os.getpid()}-abcd1234"
    assert len(owner.machine_tag()) == 8 and int(owner.machine_tag(), 16) >= 0


def test_a_domain_of_a_process_that_is_gone_is_stale():
    assert owner.stale(owner.domain_name("abcd1234", pid=_dead_pid()))


def test_a_live_process_or_another_machine_keeps_its_domain():
    assert not owner.stale(owner.domain_name("abcd1234"))  # this process: alive
    other = "0" * 8 if owner.machine_tag() != "0" * 8 else "1" * 8
    assert not owner.stale(f"guestcompat-{other}-{_dead_pid()}-abcd1234")


def test_names_it_did_not_make_are_never_stale():
    for name in ("guestcompat-esxi-6.5", f"guestcompat-{_dead_pid()}-abcd1234", "myvm", "guestcompat-"):
        assert not owner.stale(name), name
