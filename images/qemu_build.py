"""guestcompat's own QEMU: Debian's qemu and seabios source packages plus our patch series.

Stock QEMU caps what a guest can be shown (no VMware ids, no 440BX/PIIX4
layout, no VMware CPUID or GETHZ under TCG). The series in ``images/patches/``
adds each of those as an *option* of the build (stock behaviour stays the
default), and this module builds it into the cache:

1. ``apt-get source`` fetches the same Debian source version as the installed
   ``qemu-system-x86`` (and ``seabios``) binary packages, so the patched and
   the stock binary differ only by our patches; ``dpkg-source -x`` applies
   Debian's own patches.
2. Our patches are applied with ``patch``; a patch that does not apply is an
   error naming it.
3. QEMU is configured for ``x86_64-softmmu`` only, without default features
   (TCG, KVM, slirp and fdt on), and only ``qemu-system-x86_64`` is built; its
   firmware path starts with the build's own directory, which holds the
   patched SeaBIOS ``bios-256k.bin``, then Debian's firmware directories.
4. The result is published atomically under
   ``cache_root()/qemu/<name>-<key>/`` where the key hashes the source
   versions, the patches and the configure flags: a changed patch is a new
   build, an unchanged one is reused in milliseconds.

Nothing here decides what the binary can do: the compiler asks the built
binary through the capability probe, as it asks any other QEMU.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from guestcompat.errors import ImageError
from guestcompat.images.cache import TMP_PREFIX, locked, remove_stale_temps
from guestcompat.paths import cache_root

FORMAT = 1
NAME = "guestcompat-qemu"
QEMU_SERIES = "qemu-7.2"
SEABIOS_SERIES = "seabios-1.16"
#: Debian binary packages whose source versions the build follows.
QEMU_BINARY_PACKAGE, SEABIOS_BINARY_PACKAGE = "qemu-system-x86", "seabios"
#: The architectures this build serves (``--qemu patched`` on another is an error).
ARCHES = {"x86_64": "qemu-system-x86_64"}
FIRMWARE_DIR = "share/guestcompat-firmware"
DEBIAN_FIRMWARE_PATH = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")
CONFIGURE_FLAGS = ("--target-list=x86_64-softmmu", "--without-default-features", "--enable-tcg", "--enable-kvm",
                   "--enable-slirp", "--enable-fdt=system", "--disable-docs", "--disable-tools", "--disable-werror")
#: SeaBIOS's .config for bios-256k.bin, as Debian's debian/rules builds it.
SEABIOS_CONFIG = "CONFIG_QEMU=y\nCONFIG_ROM_SIZE=256\n"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class QemuBuild:
    """One built, published patched QEMU."""

    directory: Path
    qemu_source: str
    seabios_source: str
    patches: tuple[str, ...]
    """``<series>/<file> sha256:<12 hex>`` of every patch applied, in order."""
    build_seconds: float

    def binary(self, arch: str) -> Path:
        return self.directory / "bin" / ARCHES[arch]

    def manifest(self) -> dict:
        data = asdict(self)
        data["directory"] = str(self.directory)
        return data


def patch_files(series: str) -> list[Path]:
    folder = Path(str(resources.files("guestcompat.images").joinpath("patches", series)))
    return sorted(folder.glob("*.patch"))


def _run(argv: list[str], cwd: Path, what: str, log: Path) -> None:
    """Run one build step with its output in *log*; a failure names the step and shows the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ImageError(f"patched QEMU: {what}: cannot run {argv[0]}: {exc}") from None
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ImageError(f"patched QEMU: {what} failed (exit {result.returncode}); last lines of {log}:\n"
                         + "\n".join("  | " + line for line in tail))


def installed_source_version(binary_package: str) -> str:
    """The source version of an installed Debian package (``1:7.2+dfsg-7+deb12u18``)."""
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${source:Version}", binary_package],
                                capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageError(f"patched QEMU: cannot ask dpkg for {binary_package}: {exc}") from None
    if result.returncode != 0 or not result.stdout.strip():
        raise ImageError(f"patched QEMU: {binary_package} is not installed (run `make setup`)")
    return result.stdout.strip()


def build_key(qemu_source: str, seabios_source: str) -> tuple[str, tuple[str, ...]]:
    """(cache key, patch list) for these source versions and the patches in this checkout."""
    listed: list[str] = []
    digest = hashlib.sha256(f"{FORMAT}|{qemu_source}|{seabios_source}|{CONFIGURE_FLAGS}|{SEABIOS_CONFIG}".encode())
    for series in (QEMU_SERIES, SEABIOS_SERIES):
        for patch in patch_files(series):
            body = patch.read_bytes()
            digest.update(series.encode() + patch.name.encode() + body)
            listed.append(f"{series}/{patch.name} sha256:{hashlib.sha256(body).hexdigest()[:12]}")
    return digest.hexdigest()[:16], tuple(listed)


def builds_root() -> Path:
    return cache_root() / "qemu"


def find_build() -> QemuBuild | None:
    """The published build of this checkout's patches, if there is one (no apt, no compiler)."""
    try:
        qemu_source = installed_source_version(QEMU_BINARY_PACKAGE)
        seabios_source = installed_source_version(SEABIOS_BINARY_PACKAGE)
    except ImageError:
        return None
    key, _ = build_key(qemu_source, seabios_source)
    manifest = builds_root() / f"{NAME}-{key}" / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        return QemuBuild(Path(data["directory"]), data["qemu_source"], data["seabios_source"],
                         tuple(data["patches"]), float(data["build_seconds"]))
    except (ValueError, KeyError, TypeError, OSError):
        return None


def ensure_build(progress: Progress = lambda msg: None, jobs: int | None = None) -> QemuBuild:
    """Build (or reuse) the patched QEMU of this checkout's series; returns the published build."""
    qemu_source = installed_source_version(QEMU_BINARY_PACKAGE)
    seabios_source = installed_source_version(SEABIOS_BINARY_PACKAGE)
    key, patches = build_key(qemu_source, seabios_source)
    root = builds_root()
    final = root / f"{NAME}-{key}"
    with locked(root / f".{NAME}-{key}.lock"):
        found = find_build()
        if found is not None and found.directory == final and found.binary("x86_64").is_file():
            return found
        remove_stale_temps(root, final.name)
        work = root / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            started = time.monotonic()
            _build(work, final, qemu_source, seabios_source, jobs or os.cpu_count() or 1, progress)
            build = QemuBuild(final, qemu_source, seabios_source, patches, round(time.monotonic() - started, 1))
            (work / "manifest.json").write_text(json.dumps(build.manifest(), indent=1))
            shutil.rmtree(work / "src", ignore_errors=True)  # sources and objects: ~1 GB, not needed to run
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
            return build
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _source(work: Path, package: str, version: str, log: Path, progress: Progress) -> Path:
    """Fetch and unpack Debian's source package *package* at *version*; returns its tree."""
    src = work / "src"
    src.mkdir(exist_ok=True)
    progress(f"fetching Debian source {package} {version}")
    try:
        _run(["apt-get", "source", "-q", "--download-only", f"{package}={version}"], src,
             f"apt-get source {package}={version}", log)
    except ImageError:
        # A stale or newer index may no longer list the installed version: take its candidate
        # (the manifest's build.log says which .dsc was used).
        progress(f"{package} {version} is not in the source index; trying its current candidate")
        try:
            _run(["apt-get", "source", "-q", "--download-only", package], src,
                 f"apt-get source {package} (needs a deb-src entry for bookworm; `make setup` adds one)", log)
        except ImageError as exc:
            raise ImageError(f"{exc}\nThe patched QEMU cannot be built without Debian's source; "
                             f"guestcompat keeps working with stock QEMU.") from None
    dscs = sorted(src.glob(f"{package}_*.dsc"))
    if not dscs:
        raise ImageError(f"patched QEMU: apt-get source {package} left no .dsc in {src}")
    tree = src / package
    _run(["dpkg-source", "--no-check", "-x", str(dscs[-1]), str(tree)], src, f"dpkg-source -x {dscs[-1].name}", log)
    return tree


def _apply(tree: Path, series: str, log: Path, progress: Progress) -> None:
    for patch in patch_files(series):
        progress(f"applying {series}/{patch.name}")
        _run(["patch", "-p1", "--forward", "--batch", "-i", str(patch)], tree, f"patch {series}/{patch.name}", log)


def _build(work: Path, final: Path, qemu_source: str, seabios_source: str, jobs: int, progress: Progress) -> None:
    log = work / "build.log"
    firmware = work / FIRMWARE_DIR
    firmware.mkdir(parents=True)
    (work / "bin").mkdir()

    seabios = _source(work, "seabios", seabios_source, log, progress)
    _apply(seabios, SEABIOS_SERIES, log, progress)
    out = seabios / "out-256k"
    out.mkdir()
    (out / ".config").write_text(SEABIOS_CONFIG)
    make = ["make", "PYTHON=python3", f"KCONFIG_CONFIG={out / '.config'}", f"OUT={out}/"]
    progress("building SeaBIOS bios-256k.bin")
    _run([*make, "oldnoconfig"], seabios, "SeaBIOS oldnoconfig", log)
    _run([*make, f"-j{jobs}", f"{out}/bios.bin"], seabios, "SeaBIOS build", log)
    shutil.copy2(out / "bios.bin", firmware / "bios-256k.bin")

    qemu = _source(work, "qemu", qemu_source, log, progress)
    _apply(qemu, QEMU_SERIES, log, progress)
    build = qemu / "build-gc"
    build.mkdir()
    firmware_path = ":".join((str(final / FIRMWARE_DIR), *DEBIAN_FIRMWARE_PATH))
    progress("configuring QEMU (x86_64-softmmu, minimal features)")
    _run([str(qemu / "configure"), f"--prefix={final}", *CONFIGURE_FLAGS, f"--firmwarepath={firmware_path}"],
         build, "QEMU configure", log)
    progress(f"compiling qemu-system-x86_64 with {jobs} jobs (~4 min cold on 2 cores)")
    _run(["ninja", f"-j{jobs}", "qemu-system-x86_64"], build, "QEMU build", log)
    shutil.copy2(build / "qemu-system-x86_64", work / "bin" / "qemu-system-x86_64")


#: ``--qemu`` names for the builds this host has: resolved per architecture.
ALIASES = ("stock", "patched")


def binary_for_alias(alias: str, arch: str, stock_binary: str) -> str:
    """The binary ``--qemu stock|patched`` names on *arch*; a clear error when the build is missing."""
    if alias == "stock":
        return stock_binary
    if arch not in ARCHES:
        raise ImageError(f"--qemu patched: guestcompat's patched QEMU is built for {', '.join(ARCHES)} only, "
                         f"not {arch}")
    build = find_build()
    if build is None or not build.binary(arch).is_file():
        raise ImageError("--qemu patched: the patched QEMU is not built for this checkout's patches; "
                         "run `make setup` (or `guestcompat qemu build`)")
    return str(build.binary(arch))
