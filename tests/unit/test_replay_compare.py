"""Replay scoring (pure logic): identical captures score 100%, every difference is a listed deviation."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestcompat.detection.models import fingerprint_from_captures
from guestcompat.errors import ProfileError
from guestcompat.harness.replay import CATEGORIES, compare, lspci_name, load_sources

CAPTURES = Path("/work/shared/vmware-captures")
LSPCI = (CAPTURES / "fusion-ubuntu2010-jc.lspci.txt").read_text()
DMI = (CAPTURES / "fusion-centos77-jc.dmidecode.txt").read_text()


def test_a_capture_reproduces_itself_fully() -> None:
    fp = fingerprint_from_captures(LSPCI, DMI)
    result = compare(fp, fp)
    assert result.deviations == ()
    scores = {s.category: s for s in result.scores}
    assert set(scores) == set(CATEGORIES)
    for category in ("placement", "ids", "identity", "names"):
        assert scores[category].compared > 0 and scores[category].score == 1.0, category
    assert result.below(1.0) == ()


def test_each_difference_is_a_deviation_in_its_category() -> None:
    source = fingerprint_from_captures(LSPCI, DMI)
    moved = LSPCI.replace("Slot:\t02:01.0", "Slot:\t02:09.0", 1)           # the e1000 moved
    changed = DMI.replace("Manufacturer: VMware, Inc.", "Manufacturer: QEMU", 1)
    result = compare(source, fingerprint_from_captures(moved, changed))
    by_cat = {}
    for dev in result.deviations:
        by_cat.setdefault(dev.category, []).append(dev.text)
    assert any("PCI 02:01.0" in t and "these ids are at 02:09.0" in t for t in by_cat["placement"]), by_cat
    assert any("NIC name of 02:01.0" in t and "'ens33'" in t for t in by_cat["names"]), by_cat
    assert any("Manufacturer: source 'VMware, Inc.', replay 'QEMU'" in t for t in by_cat["identity"]), by_cat
    scores = {s.category: s for s in result.scores}
    for category, texts in by_cat.items():   # the score counts exactly the listed deviations
        assert scores[category].compared - scores[category].matched == len(texts)
    assert {s.category for s in result.below(1.0)} >= {"placement", "identity", "names"}


def test_an_lspci_only_capture_does_not_pretend_to_judge_identity() -> None:
    fp = fingerprint_from_captures(LSPCI, None)
    scores = {s.category: s for s in compare(fp, fingerprint_from_captures(None, None)).scores}
    assert scores["identity"].compared == 0 and scores["identity"].score is None
    assert "not compared" in scores["identity"].line()
    assert scores["placement"].score == 0.0


def test_predicted_names_follow_net_id() -> None:
    fp = fingerprint_from_captures(LSPCI, None)
    nics = [d for d in fp.tools.lspci if d.class_id and d.class_id >> 8 == 2]
    present = {d.address: d for d in fp.tools.lspci}
    assert [lspci_name(d, present, fp) for d in nics] == ["ens33"]


def test_sources_are_recognised_or_refused_by_name(tmp_path: Path) -> None:
    source = load_sources((CAPTURES / "fusion-ubuntu2010-jc.lspci.txt", CAPTURES / "fusion-centos77-jc.dmidecode.txt"))
    assert dict(source.facts.sources) == {"fusion-ubuntu2010-jc.lspci.txt": "lspci -vmm/-nnmmv",
                                          "fusion-centos77-jc.dmidecode.txt": "dmidecode"}
    assert source.fingerprint.tools.dmidecode.first(1).fields["Manufacturer"] == "VMware, Inc."
    assert len(source.fingerprint.tools.lspci) == len(fingerprint_from_captures(LSPCI, None).tools.lspci)
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\n")
    with pytest.raises(ProfileError, match="notes.txt: not a capture this tool reads .* Accepted forms: lspci, "):
        load_sources((junk,))
    # the same VM's listing twice is one VM; another VM's listing is refused
    assert load_sources((CAPTURES / "fusion-ubuntu2010-jc.lspci.txt",) * 2).facts.pci
    other = tmp_path / "other.txt"
    other.write_text("00:0f.0 VGA compatible controller [0300]: Red Hat, Inc. Virtio GPU [1af4:1050] (rev 01)\n")
    with pytest.raises(ProfileError, match="two VMs in one capture"):
        load_sources((CAPTURES / "fusion-ubuntu2010-jc.lspci.txt", other))
    cut = tmp_path / "cap.json"
    cut.write_text('{"format": "guestcompat-probe", "version": 1, "pci": {')
    with pytest.raises(Exception, match="cap.json: line 1: not valid JSON"):
        load_sources((cut,))


def test_image_goes_on_the_first_presented_storage_controller(tmp_path: Path) -> None:
    from guestcompat.harness.replay import _disk

    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"x")
    profile = {"pci": {"devices": [{"name": "nic", "kind": "vmxnet3", "address": "0b:00.0"},
                                   {"name": "sas", "kind": "lsisas1068", "address": "00:10.0",
                                    "substitute": {"reason": "r"}},
                                   {"name": "pv", "kind": "pvscsi", "address": "03:00.0"}]}}
    assert _disk(profile, disk) == {"name": "disk0", "controller": "pv", "unit": 0, "image": str(disk.resolve())}
    with pytest.raises(ProfileError, match="no such file"):
        _disk(profile, tmp_path / "missing.vmdk")
    with pytest.raises(ProfileError, match="no storage controller"):
        _disk({"pci": {"devices": []}}, disk)


def test_a_nic_named_only_by_the_capture_is_scored_from_the_replays_lspci() -> None:
    """The source names a NIC (ip link, /sys/class/net) but lists no PCI function for it; a replay
    guest whose tools did not run net_id gets the name net_id derives from its lspci."""
    source = fingerprint_from_captures(None, DMI)
    replay = fingerprint_from_captures(LSPCI, None)
    assert not replay.tools.net_names
    result = compare(source, replay, source_nics={"02:01.0": "ens33"})
    names = {s.category: s for s in result.scores}["names"]
    assert (names.matched, names.compared) == (1, 1), result.deviations
    wrong = compare(source, replay, source_nics={"02:01.0": "ens160"})
    assert [d.text for d in wrong.deviations if d.category == "names"] == [
        "NIC name of 02:01.0: source 'ens160', replay 'ens33'"], wrong.deviations
