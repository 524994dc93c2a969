"""Package resolution and the stale-index fallback, without touching the network."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from guestcompat.errors import ImageError
from guestcompat.images import debian
from guestcompat.images.debian import (PackageRef, PackageSource, kernel_dependency,
                                       ordered_versions, parse_control_records, parse_policy)

POLICY = """\
linux-image-amd64:
  Installed: (none)
  Candidate: 6.1.192-2
  Version table:
     6.1.192-2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
     6.1.176-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
busybox-static:
  Installed: 1:1.35.0-4+deb12u1+b1
  Candidate: 1:1.35.0-4+deb12u1+b1
  Version table:
     1:1.36.0-1 500
        500 http://deb.debian.org/debian trixie/main amd64 Packages
 *** 1:1.35.0-4+deb12u1+b1 990
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
     1:1.30.0-1 100
        100 /var/lib/dpkg/status
"""

SHOW_META = """\
Package: linux-image-amd64
Version: 6.1.192-2
Architecture: amd64
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
Size: 1480

Package: linux-image-amd64
Version: 6.1.176-1
Architecture: amd64
Depends: linux-image-6.1.0-50-amd64 (= 6.1.176-1)
Size: 1472

Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Architecture: amd64
Size: 928188
Description: Standalone rescue shell
 with a continuation line

"""

SHOW_KERNELS = """\
Package: linux-image-6.1.0-56-amd64
Version: 6.1.192-2
Architecture: amd64
Size: 70550672

Package: linux-image-6.1.0-50-amd64
Version: 6.1.176-1
Architecture: amd64
Size: 70305560
"""


def test_parse_policy_orders_candidate_first_and_skips_installed_only() -> None:
    pol = parse_policy(POLICY)
    assert ordered_versions(pol["linux-image-amd64"]) == ["6.1.192-2", "6.1.176-1"]
    # A pinned older candidate goes first; a version only in dpkg's status is not downloadable.
    assert ordered_versions(pol["busybox-static"]) == ["1:1.35.0-4+deb12u1+b1", "1:1.36.0-1"]


def test_parse_control_records() -> None:
    records = parse_control_records(SHOW_META)
    assert [r["Version"] for r in records] == ["6.1.192-2", "6.1.176-1", "1:1.35.0-4+deb12u1+b1"]
    assert records[2]["Description"].endswith("with a continuation line")


@pytest.mark.parametrize("depends,expected", [
    ("linux-image-6.1.0-56-amd64 (= 6.1.192-2)", ("linux-image-6.1.0-56-amd64", "6.1.192-2")),
    ("linux-image-6.1.0-56-powerpc64le (= 6.1.192-2), foo",
     ("linux-image-6.1.0-56-powerpc64le", "6.1.192-2")),
    ("linux-base, linux-image-6.1.0-1-cloud-amd64-unsigned | linux-image-6.1.0-1-cloud-amd64",
     ("linux-image-6.1.0-1-cloud-amd64-unsigned", None)),
])
def test_kernel_dependency(depends: str, expected: tuple[str, str | None]) -> None:
    assert kernel_dependency(depends) == expected


def test_kernel_dependency_missing() -> None:
    with pytest.raises(ImageError, match="no linux-image"):
        kernel_dependency("kmod, linux-base")


@pytest.fixture
def apt_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for apt's lists: touching it is like running apt-get update."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "Packages").write_text("v1")
    monkeypatch.setattr(debian, "APT_STATE_PATHS", (lists,))
    return lists / "Packages"


@pytest.fixture
def apt_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake_run_tool(argv: Sequence[str], **_kw: object) -> str:
        calls.append(list(argv))
        if argv[:2] == ["apt-cache", "policy"]:
            return POLICY
        if argv[:2] == ["apt-cache", "show"]:
            return SHOW_KERNELS if "linux-image-6.1.0-56-amd64:amd64" in argv else SHOW_META
        raise AssertionError(argv)

    monkeypatch.setattr(debian, "run_tool", fake_run_tool)
    return calls


def test_resolve_kernel_metapackage_and_cache(tmp_path: Path, apt_state: Path,
                                             apt_calls: list[list[str]]) -> None:
    src = PackageSource(tmp_path / "debs")
    got = src.resolve(["busybox-static"], ["linux-image-amd64"], "amd64")
    assert got["linux-image-amd64"] == [
        PackageRef("linux-image-6.1.0-56-amd64", "6.1.192-2", "amd64"),
        PackageRef("linux-image-6.1.0-50-amd64", "6.1.176-1", "amd64")]
    assert got["linux-image-amd64"][0].size == 70550672
    assert got["busybox-static"][0] == PackageRef("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64")
    assert all(c[0] == "apt-cache" and all(":amd64" in a for a in c[2:]) for c in apt_calls)
    n = len(apt_calls)

    # Same apt state: served from resolution.json, no apt-cache at all.
    assert PackageSource(tmp_path / "debs").resolve(
        ["busybox-static"], ["linux-image-amd64"], "amd64") == got
    assert len(apt_calls) == n

    # apt-get update changed the lists: resolved again.
    apt_state.write_text("v2")
    PackageSource(tmp_path / "debs").resolve(["busybox-static"], ["linux-image-amd64"], "amd64")
    assert len(apt_calls) > n


def test_unknown_package_hints_at_multiarch(tmp_path: Path, apt_state: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian, "run_tool", lambda argv, **kw: "")
    with pytest.raises(ImageError, match=r"busybox-static:ppc64el.*dpkg --add-architecture ppc64el"):
        PackageSource(tmp_path / "debs").resolve(["busybox-static"], [], "ppc64el")


CANDIDATES = [PackageRef("linux-image-6.1.0-56-amd64", "6.1.192-2", "amd64"),
              PackageRef("linux-image-6.1.0-50-amd64", "6.1.176-1", "amd64")]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Replace apt-get download: versions in ``fail`` answer like a stale index (404)."""
    state: dict[str, list[str]] = {"fail": [CANDIDATES[0].version], "calls": []}

    def fake_download(ref: PackageRef, dest: Path) -> Path:
        state["calls"].append(ref.version)
        if ref.version in state["fail"]:
            raise ImageError(f"downloading {ref.apt_spec} failed:\nE: 404  Not Found [IP: 1.2.3.4 80]")
        out = dest / "whatever_apt_calls_it.deb"
        out.write_bytes(b"!<arch>\n" + ref.version.encode())
        return out

    monkeypatch.setattr(debian, "apt_get_download", fake_download)
    return state


def test_stale_index_falls_back_to_the_next_version(tmp_path: Path, apt_state: Path,
                                                    downloads: dict[str, list[str]]) -> None:
    messages: list[str] = []
    src = PackageSource(tmp_path / "debs", messages.append)
    chosen = src.choose("the kernel", CANDIDATES)
    assert chosen == CANDIDATES[1]
    assert downloads["calls"] == ["6.1.192-2", "6.1.176-1"]
    assert src.deb_path(chosen).read_bytes().endswith(b"6.1.176-1")
    assert any("downloading linux-image-6.1.0-50-amd64" in m for m in messages)
    assert not list((tmp_path / "debs").glob(".tmp-*")), "scratch dirs must be removed"

    # The 404 is remembered: the next run neither retries it nor downloads again.
    assert PackageSource(tmp_path / "debs").choose("the kernel", CANDIDATES) == CANDIDATES[1]
    assert downloads["calls"] == ["6.1.192-2", "6.1.176-1"]

    # After apt-get update the first candidate is tried again (and now works).
    apt_state.write_text("v2")
    downloads["fail"] = []
    assert PackageSource(tmp_path / "debs").choose("the kernel", CANDIDATES) == CANDIDATES[0]


def test_all_versions_failing_names_package_and_versions(tmp_path: Path, apt_state: Path,
                                                         downloads: dict[str, list[str]]) -> None:
    downloads["fail"] = [c.version for c in CANDIDATES]
    with pytest.raises(ImageError) as err:
        PackageSource(tmp_path / "debs").choose("the kernel (linux-image-amd64:amd64)", CANDIDATES)
    message = str(err.value)
    assert "linux-image-amd64:amd64" in message
    assert "6.1.192-2" in message and "6.1.176-1" in message
    assert "404" in message and "apt-get update" in message
    assert not list((tmp_path / "debs").glob("*.deb"))


def test_have_skips_download(tmp_path: Path, apt_state: Path,
                             downloads: dict[str, list[str]]) -> None:
    src = PackageSource(tmp_path / "debs")
    assert src.choose("k", CANDIDATES, have=lambda r: r == CANDIDATES[0]) == CANDIDATES[0]
    assert downloads["calls"] == []


def test_real_download_failure_is_an_image_error(tmp_path: Path) -> None:
    """The real apt-get path: a version no index has fails cleanly, nothing is left behind."""
    ref = PackageRef("busybox-static", "0.0-does-not-exist", debian.run_tool(
        ["dpkg", "--print-architecture"], what="dpkg").strip())
    with pytest.raises(ImageError, match="busybox-static"):
        PackageSource(tmp_path / "debs").fetch(ref)
    assert not [p for p in (tmp_path / "debs").iterdir() if not p.name.endswith(".lock")]
