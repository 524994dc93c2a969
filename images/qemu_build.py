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
   build, an unchanged one is reused in milliseconds. The compiler runs
   through ccache (``cache_root()/ccache``) where Debian's ``ccache`` is
   installed, with one relocatable prefix for every build: a new patch
   recompiles only the files it touches.

Two such builds are known (:data:`SOURCE_BUILDS`): ``patched``, the
``qemu-7.2`` series on the installed 7.2 source, and ``10.0-patched``, the
``qemu-10.0`` series on bookworm-backports' 10.0 source (whose newer meson
comes from PyPI into a private build venv, and whose option ROMs come from
Debian's ``qemu-system-data`` of the same version). Debian's unpatched 10.0
is not built but unpacked: images/qemu_debian.py; images/qemu_builds.py is
the registry ``--qemu`` names resolve through.

Nothing here decides what the binary can do: the compiler asks the built
binary through the capability probe, as it asks any other QEMU.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from guestcompat.errors import ImageError
from guestcompat.images.cache import TMP_PREFIX, locked, remove_stale_temps
from guestcompat.paths import cache_root

FORMAT = 2
NAME = "guestcompat-qemu"
#: QEMU's configured prefix: the same for every build, so its configuration header (which every
#: object includes) does not change with the build key and ccache reuses the objects of the last
#: build; QEMU finds the files under it relative to its binary (util/cutils.c get_relocated_path).
RELOCATABLE_PREFIX = "/usr/local/guestcompat-qemu"
#: ccache's size limit for the QEMU objects (two releases' worth).
CCACHE_MAX_SIZE = "4G"
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


@dataclass(frozen=True)
class SourceBuild:
    """How one patched QEMU is built: which Debian source, which series, which build tools.

    ``suite`` None follows the installed ``qemu-system-x86`` (the stock binary and the patched
    one then differ only by our patches); a suite (``bookworm-backports``) takes that suite's
    version. ``meson`` is a pip requirement for QEMU releases newer than Debian 12's meson (1.0)
    can configure: it goes into a private venv of the build, never the system."""

    name: str
    qemu_series: str
    suite: str | None = None
    extra_configure: tuple[str, ...] = ()
    meson: str | None = None
    """pip requirements of the build's own venv (meson and what QEMU's configure asks for)."""
    firmware_package: bool = False
    """Unpack Debian's ``qemu-system-data`` of the same version for the option ROMs
    (pvh.bin, linuxboot_dma.bin) that must match the QEMU version."""

    @property
    def directory_name(self) -> str:
        return NAME if self.name == "patched" else f"{NAME}-{self.name}"


#: The patched builds `guestcompat qemu build` knows, by their ``--qemu`` name.
SOURCE_BUILDS = {
    "patched": SourceBuild("patched", QEMU_SERIES),
    # --enable-vmdk: 10.0 made the VMDK driver a feature that --without-default-features turns off
    # (7.2 always built it); an imported VMware guest's disk is a VMDK (measured: "Unknown driver 'vmdk'").
    "10.0-patched": SourceBuild("10.0-patched", "qemu-10.0", suite="bookworm-backports",
                                extra_configure=("--disable-install-blobs", "--enable-vmdk"),
                                meson="meson>=1.5,<1.8 pycotap>=1.1", firmware_package=True),
}
DEFAULT_BUILD = "patched"

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
    name: str = DEFAULT_BUILD
    notes: tuple[str, ...] = ()
    """What a reader of ``qemu show`` should know (a source fallback taken, say)."""

    def binary(self, arch: str) -> Path:
        return self.directory / "bin" / ARCHES[arch]

    def manifest(self) -> dict:
        data = asdict(self)
        data["directory"] = str(self.directory)
        return data


def patch_files(series: str) -> list[Path]:
    folder = Path(str(resources.files("guestcompat.images").joinpath("patches", series)))
    return sorted(folder.glob("*.patch"))


def _run(argv: list[str], cwd: Path, what: str, log: Path, env: dict[str, str] | None = None,
         label: str = "patched QEMU") -> None:
    """Run one build step with its output in *log*; a failure names the build (*label*) and the step
    and shows the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env)
        except OSError as exc:
            raise ImageError(f"{label}: {what}: cannot run {argv[0]}: {exc}") from None
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ImageError(f"{label}: {what} failed (exit {result.returncode}); last lines of {log}:\n"
                         + "\n".join("  | " + line for line in tail))


def installed_source_version(binary_package: str, label: str = "patched QEMU") -> str:
    """The source version of an installed Debian package (``1:7.2+dfsg-7+deb12u18``)."""
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${source:Version}", binary_package],
                                capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageError(f"{label}: cannot ask dpkg for {binary_package}: {exc}") from None
    if result.returncode != 0 or not result.stdout.strip():
        raise ImageError(f"{label}: {binary_package} is not installed (run `make setup`)")
    return result.stdout.strip()


def suite_version(binary_package: str, suite: str) -> str:
    """The version of *binary_package* that Debian suite *suite* offers (apt's index, no download)."""
    from guestcompat.images.debian_suite import candidate_version

    return candidate_version(binary_package, suite, what="patched QEMU")


def qemu_source_version(spec: SourceBuild) -> str:
    return (installed_source_version(QEMU_BINARY_PACKAGE) if spec.suite is None
            else suite_version(QEMU_BINARY_PACKAGE, spec.suite))


def build_key(qemu_source: str, seabios_source: str,
              spec: SourceBuild = SOURCE_BUILDS[DEFAULT_BUILD]) -> tuple[str, tuple[str, ...]]:
    """(cache key, patch list) for these source versions and the patches in this checkout."""
    flags = CONFIGURE_FLAGS + spec.extra_configure
    extra = "" if spec.name == DEFAULT_BUILD else f"|{spec.name}|{spec.meson}|{spec.firmware_package}"
    digest = hashlib.sha256(f"{FORMAT}|{qemu_source}|{seabios_source}|{flags}|{SEABIOS_CONFIG}{extra}".encode())
    for series, patch in _series_patches(spec):
        digest.update(series.encode() + patch.name.encode() + patch.read_bytes())
    return digest.hexdigest()[:16], patch_list(spec)


def _series_patches(spec: SourceBuild) -> list[tuple[str, Path]]:
    return [(series, patch) for series in (spec.qemu_series, SEABIOS_SERIES) for patch in patch_files(series)]


def patch_list(spec: SourceBuild) -> tuple[str, ...]:
    """``<series>/<file> sha256:<12 hex>`` of every patch *spec* applies, in order (the manifest's list)."""
    return tuple(f"{series}/{patch.name} sha256:{hashlib.sha256(patch.read_bytes()).hexdigest()[:12]}"
                 for series, patch in _series_patches(spec))


def builds_root() -> Path:
    return cache_root() / "qemu"


def source_spec(name: str) -> SourceBuild:
    try:
        return SOURCE_BUILDS[name]
    except KeyError:
        raise ImageError(f"unknown patched QEMU build {name!r} (known: {', '.join(SOURCE_BUILDS)})") from None


def find_build(name: str = DEFAULT_BUILD) -> QemuBuild | None:
    """The published build *name* of this checkout's patches, if there is one (no compiler; a
    suite build asks apt's index for the version)."""
    spec = source_spec(name)
    if spec.suite is not None:
        # Another suite's version comes from apt's index (~1 s a question): take the newest build
        # of this checkout's patches instead; `qemu build` is what follows the index.
        builds = [b for b in published(spec.directory_name) if b.patches == patch_list(spec)]
        return builds[-1] if builds else None
    try:
        qemu_source = qemu_source_version(spec)
        seabios_source = installed_source_version(SEABIOS_BINARY_PACKAGE)
    except ImageError:
        return None
    key, _ = build_key(qemu_source, seabios_source, spec)
    return read_manifest(builds_root() / f"{spec.directory_name}-{key}" / "manifest.json")


def read_manifest(manifest: Path) -> QemuBuild | None:
    """The build a ``manifest.json`` describes; None if it is missing or unreadable."""
    try:
        data = json.loads(manifest.read_text())
        return QemuBuild(Path(data["directory"]), data["qemu_source"], data["seabios_source"],
                         tuple(data["patches"]), float(data["build_seconds"]), data.get("name", DEFAULT_BUILD),
                         tuple(data.get("notes", ())))
    except (ValueError, KeyError, TypeError, OSError):
        return None


def published(directory_name: str) -> list[QemuBuild]:
    """Every published build in ``<directory_name>-<key>/``, oldest first (by publication time)."""
    dirs = [d for d in builds_root().glob(f"{directory_name}-*")
            if re.fullmatch(re.escape(directory_name) + r"-[0-9a-f]{16}", d.name)]
    builds = [(d.stat().st_mtime, b) for d in dirs if (b := read_manifest(d / "manifest.json")) is not None]
    return [b for _, b in sorted(builds, key=lambda pair: pair[0])]


def ensure_build(progress: Progress = lambda msg: None, jobs: int | None = None,
                 name: str = DEFAULT_BUILD) -> QemuBuild:
    """Build (or reuse) the patched QEMU *name* of this checkout's series; returns the published build."""
    spec = source_spec(name)
    qemu_source = qemu_source_version(spec)
    seabios_source = installed_source_version(SEABIOS_BINARY_PACKAGE)
    key, patches = build_key(qemu_source, seabios_source, spec)
    final = builds_root() / f"{spec.directory_name}-{key}"

    def make(work: Path) -> QemuBuild:
        started = time.monotonic()
        notes = _build(work, final, spec, qemu_source, seabios_source, jobs or os.cpu_count() or 1, progress)
        shutil.rmtree(work / "src", ignore_errors=True)  # sources and objects: ~1 GB, not needed to run
        return QemuBuild(final, qemu_source, seabios_source, patches, round(time.monotonic() - started, 1),
                         name, tuple(notes))

    return publish(final, lambda: find_build(name), make)


def publish(final: Path, find: Callable[[], Any], make: Callable[[Path], Any],
            ready: Callable[[Any], bool] = lambda build: build.binary("x86_64").is_file()) -> Any:
    """The build at *final*: the one *find* sees there (and *ready* accepts), or what *make* puts
    into a private work directory, published with one ``os.replace`` under *final*'s lock (a reader
    sees a whole build or none; a second builder waits for the first and reuses its result).
    A build is any object with ``directory`` and ``manifest()`` (QemuBuild, the OVMF's build)."""
    root = final.parent
    with locked(root / f".{final.name}.lock"):
        found = find()
        if found is not None and found.directory == final and ready(found):
            return found
        remove_stale_temps(root, final.name)
        work = root / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            build = make(work)
            (work / "manifest.json").write_text(json.dumps(build.manifest(), indent=1))
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
            return build
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _source(work: Path, package: str, version: str, log: Path, progress: Progress,
            suite: str | None = None, notes: list[str] | None = None, label: str = "patched QEMU") -> Path:
    """Fetch and unpack Debian's source package *package* at *version*; returns its tree.

    A stale index (one of the brief's facts of life) may list a version whose .dsc the
    mirror no longer has: an installed version falls back to the index's candidate; a
    suite's version whose packaging is gone but whose upstream tarball arrived is built
    from that tarball (Debian's own patches are then missing: said in the notes)."""
    src = work / "src"
    src.mkdir(exist_ok=True)
    progress(f"fetching Debian source {package} {version}")
    try:
        _run(["apt-get", "source", "-q", "--download-only", f"{package}={version}"], src,
             f"apt-get source {package}={version}", log, label=label)
    except ImageError:
        origs = sorted(src.glob(f"{package}_*.orig.tar.*"))
        if suite is not None and origs and not list(src.glob(f"{package}_*.dsc")):
            progress(f"{package} {version}: the mirror has the upstream tarball but not Debian's packaging; "
                     f"building the upstream tree")
            if notes is not None:
                notes.append(f"built from {origs[-1].name} without Debian's packaging (the mirror's "
                             f"{package} {version} .dsc was missing)")
            tree = src / package
            tree.mkdir()
            _run(["tar", "-xf", str(origs[-1]), "-C", str(tree), "--strip-components=1"], src,
                 f"unpack {origs[-1].name}", log, label=label)
            return tree
        # A stale or newer index may no longer list the installed version: take its candidate
        # (the manifest's build.log says which .dsc was used).
        progress(f"{package} {version} is not in the source index; trying its current candidate")
        wanted = package if suite is None else f"{package}/{suite}"
        try:
            _run(["apt-get", "source", "-q", "--download-only", wanted], src,
                 f"apt-get source {wanted} (needs a deb-src entry for {suite or 'bookworm'}; `make setup` adds one)",
                 log, label=label)
        except ImageError as exc:
            what = ("The patched QEMU cannot be built without Debian's source; guestcompat keeps working with "
                    "stock QEMU." if label == "patched QEMU"
                    else f"{label} cannot be built without Debian's source; guestcompat keeps working without it.")
            raise ImageError(f"{exc}\n{what}") from None
    dscs = sorted(src.glob(f"{package}_*.dsc"))
    if not dscs:
        raise ImageError(f"{label}: apt-get source {package} left no .dsc in {src}")
    tree = src / package
    _run(["dpkg-source", "--no-check", "-x", str(dscs[-1]), str(tree)], src, f"dpkg-source -x {dscs[-1].name}", log,
         label=label)
    return tree


def _apply(tree: Path, series: str, log: Path, progress: Progress, label: str = "patched QEMU") -> None:
    for patch in patch_files(series):
        progress(f"applying {series}/{patch.name}")
        _run(["patch", "-p1", "--forward", "--batch", "-i", str(patch)], tree, f"patch {series}/{patch.name}", log,
             label=label)


def _build_python(work: Path, spec: SourceBuild, log: Path, progress: Progress) -> list[str]:
    """``--python=`` for QEMU's configure: the system's, or a private venv with *spec*'s meson."""
    if spec.meson is None:
        return []
    venv = work / "build-venv"
    progress(f"preparing the build's own Python ({spec.meson})")
    _run([sys.executable, "-m", "venv", str(venv)], work, "python -m venv (build tools)", log)
    _run([str(venv / "bin" / "pip"), "install", "-q", *spec.meson.split()], work,
         f"pip install {spec.meson} (needs PyPI)", log)
    return [f"--python={venv / 'bin' / 'python3'}"]


def compiler_env(work: Path) -> dict[str, str]:
    """The environment QEMU's configure and ninja run in: gcc through ccache when Debian's ccache is
    installed, its cache outside git (``cache_root()/ccache``), paths under *work* hashed relative
    (every build has its own work directory) and the working directory not hashed (debug info)."""
    env = dict(os.environ)
    if shutil.which("ccache") is None:
        return env
    directory = cache_root() / "ccache"
    directory.mkdir(parents=True, exist_ok=True)
    env.update({"CC": "ccache gcc", "CCACHE_DIR": str(directory), "CCACHE_BASEDIR": str(work),
                "CCACHE_NOHASHDIR": "1", "CCACHE_MAXSIZE": CCACHE_MAX_SIZE})
    return env


def _build(work: Path, final: Path, spec: SourceBuild, qemu_source: str, seabios_source: str, jobs: int,
           progress: Progress) -> list[str]:
    log = work / "build.log"
    firmware = work / FIRMWARE_DIR
    firmware.mkdir(parents=True)
    (work / "bin").mkdir()
    notes: list[str] = []

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

    firmware_path = [f"{RELOCATABLE_PREFIX}/{FIRMWARE_DIR}"]
    if spec.firmware_package:
        from guestcompat.images.debian_suite import unpack_packages

        version = qemu_source
        progress(f"unpacking Debian's qemu-system-data {version} (option ROMs of this QEMU version)")
        unpack_packages([f"qemu-system-data={version}"], work / "data", work / "src", log)
        firmware_path.append(f"{RELOCATABLE_PREFIX}/data/usr/share/qemu")
    firmware_path += DEBIAN_FIRMWARE_PATH

    qemu = _source(work, "qemu", qemu_source, log, progress, suite=spec.suite, notes=notes)
    _apply(qemu, spec.qemu_series, log, progress)
    python = _build_python(work, spec, log, progress)
    build = qemu / "build-gc"
    build.mkdir()
    env = compiler_env(work)
    progress("configuring QEMU (x86_64-softmmu, minimal features"
             + (", through ccache)" if "CCACHE_DIR" in env else ")"))
    _run([str(qemu / "configure"), f"--prefix={RELOCATABLE_PREFIX}", *CONFIGURE_FLAGS, *spec.extra_configure,
          *python, f"--firmwarepath={':'.join(firmware_path)}"], build, "QEMU configure", log, env)
    progress(f"compiling qemu-system-x86_64 with {jobs} jobs (~3-4 min cold on 2 cores; "
             f"a ccache-warm rebuild compiles only what a patch changed)")
    _run(["ninja", f"-j{jobs}", "qemu-system-x86_64"], build, "QEMU build", log, env)
    if "CCACHE_DIR" in env:
        stats = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=False)
        counts = dict(line.split("\t", 1) for line in stats.stdout.splitlines() if "\t" in line)
        notes.append(f"ccache (cumulative): {counts.get('direct_cache_hit', '?')} direct and "
                     f"{counts.get('preprocessed_cache_hit', '?')} preprocessed hits, "
                     f"{counts.get('cache_miss', '?')} misses")
    shutil.copy2(build / "qemu-system-x86_64", work / "bin" / "qemu-system-x86_64")
    shutil.rmtree(work / "build-venv", ignore_errors=True)
    return notes
