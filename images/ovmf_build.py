"""guestcompat's OVMF: Debian's edk2 source package plus our patch series, one 4 MiB image.

Debian's OVMF cannot run on VMware's chipset layout (440BX host bridge 8086:7190,
PIIX4 at 00:07.x: it only knows the i440FX's 8086:1237 and hard-codes PIIX4 at
00:01.x) and is built without the PVSCSI and MPT SCSI boot drivers. The series in
``images/patches/edk2-<version>/`` adds what a VMware EFI guest needs, each patch
a no-op on QEMU's own layouts, and this module builds it into the cache:

1. ``apt-get source edk2`` at the source version of the installed ``ovmf``
   package (the stock and our image then differ by our patches and flags);
   ``dpkg-source -x`` applies Debian's patches. The orig tarball embeds
   openssl, brotli and softfloat: no git submodules.
2. Our patches are applied with ``patch``; one that does not apply is an error naming it.
3. BaseTools, then one platform: the non-SMM 4 MiB ``OvmfPkgIa32X64.dsc`` image
   (PEI IA32, DXE X64, as Debian's ``OVMF_CODE_4M.fd``) with :data:`DEFINES`:
   Secure Boot and TPM 2.0 as Debian has them, the PVSCSI and MPT SCSI drivers on,
   no shell and no iSCSI (NVMe, SATA/AHCI, virtio stay as Debian has them). The
   build environment edksetup.sh would make is set here (no shell); ``gcc`` goes
   through ccache when it is installed (a prefix directory for GCC5_BIN).
4. ``OVMF_CODE_4M.fd`` and its empty variable store ``OVMF_VARS_4M.fd`` are
   published atomically under ``cache_root()/ovmf/<name>-<key>/`` with a
   ``manifest.json``; the key hashes the source version, the patches and the flags.

The manifest's ``capabilities`` are what the compiler reads (never this build's
name): the ``Capability:`` line of each patch's header plus what the flags turn on
(:data:`FLAG_CAPABILITIES`) and what the platform always has (:data:`BASE_CAPABILITIES`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from guestcompat.errors import ImageError
from guestcompat.images.qemu_build import Progress, _apply, _run, _source, installed_source_version, patch_files, publish
from guestcompat.paths import cache_root

FORMAT = 1
LABEL = "guestcompat's OVMF"
NAME = "guestcompat-ovmf"
SOURCE_PACKAGE = "edk2"
#: The Debian binary package whose source version the build follows (the stock OVMF).
BINARY_PACKAGE = "ovmf"
SERIES = "edk2-2022.11"
PLATFORM = "OvmfPkg/OvmfPkgIa32X64.dsc"
BUILD_DIR = "Build/Ovmf3264/RELEASE_GCC5"
#: ``build`` arguments besides the defines (edk2's GCC5 toolchain, RELEASE: what Debian builds).
BUILD_ARGS = ("-a", "IA32", "-a", "X64", "-t", "GCC5", "-b", "RELEASE", "-p", PLATFORM)
#: ``-D`` defines: Debian's 4 MiB flags (Secure Boot, TPM 2.0; its TLS/HTTP/IPv6 network boot left
#: out), the VMware storage boot drivers on, no UEFI shell and no iSCSI (nothing here needs them).
DEFINES = ("FD_SIZE_4MB", "SECURE_BOOT_ENABLE=TRUE", "TPM2_ENABLE=TRUE", "PVSCSI_ENABLE=TRUE",
           "MPT_SCSI_ENABLE=TRUE", "BUILD_SHELL=FALSE", "NETWORK_ISCSI_ENABLE=FALSE")
#: What a define turns on, as the manifest's capabilities name it.
FLAG_CAPABILITIES = {"SECURE_BOOT_ENABLE=TRUE": "secure-boot", "TPM2_ENABLE=TRUE": "tpm2",
                     "PVSCSI_ENABLE=TRUE": "boot-pvscsi", "MPT_SCSI_ENABLE=TRUE": "boot-mpt-scsi"}
#: What OvmfPkgIa32X64 always builds in (boot drivers of the controllers guestcompat presents).
BASE_CAPABILITIES = ("boot-ahci", "boot-nvme", "boot-virtio")
CODE, VARS = "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"
#: The built files: (file in the build's FV directory, published name).
OUTPUTS = (("OVMF_CODE.fd", CODE), ("OVMF_VARS.fd", VARS))
CAPABILITY_LINE = re.compile(r"^Capability: ([a-z0-9][a-z0-9-]*)\s*$", re.MULTILINE)
#: A patch's header (before its ``---``) may name at most this much text: bounded input.
MAX_HEADER = 16384


@dataclass(frozen=True)
class OvmfBuild:
    """One built, published OVMF image pair."""

    directory: Path
    source: str
    """Debian's edk2 source version (``2022.11-6+deb12u2``)."""
    patches: tuple[str, ...]
    """``<series>/<file> sha256:<12 hex>`` of every patch applied, in order."""
    defines: tuple[str, ...]
    capabilities: tuple[str, ...]
    build_seconds: float
    notes: tuple[str, ...] = ()

    @property
    def code(self) -> Path:
        return self.directory / CODE

    @property
    def vars(self) -> Path:
        return self.directory / VARS

    def manifest(self) -> dict:
        data = asdict(self)
        data["directory"] = str(self.directory)
        data["format"] = FORMAT
        return data

    def summary(self) -> str:
        """One line for reports: which OVMF, which options."""
        return (f"guestcompat OVMF (Debian edk2 {self.source} + {len(self.patches)} patches; "
                f"{', '.join(self.capabilities)})")


def patch_capabilities(patch: Path) -> tuple[str, ...]:
    """The ``Capability:`` lines of a patch's header (the text before its ``---``)."""
    text = patch.read_text(errors="replace")
    header = text.split("\n---\n", 1)[0]
    if len(header) > MAX_HEADER:
        raise ImageError(f"{LABEL}: {patch.name}: header longer than {MAX_HEADER} characters")
    return tuple(CAPABILITY_LINE.findall(header))


def capabilities(defines: tuple[str, ...] = DEFINES) -> tuple[str, ...]:
    """What a build of this checkout's series with *defines* can do, in a stable order."""
    found = [c for patch in patch_files(SERIES) for c in patch_capabilities(patch)]
    found += [FLAG_CAPABILITIES[d] for d in defines if d in FLAG_CAPABILITIES]
    return tuple(dict.fromkeys([*found, *BASE_CAPABILITIES]))


def patch_list() -> tuple[str, ...]:
    return tuple(f"{SERIES}/{p.name} sha256:{hashlib.sha256(p.read_bytes()).hexdigest()[:12]}"
                 for p in patch_files(SERIES))


def build_key(source: str, defines: tuple[str, ...] = DEFINES) -> str:
    """The cache key of a build of *source* with this checkout's patches and *defines*."""
    digest = hashlib.sha256(f"{FORMAT}|{source}|{PLATFORM}|{BUILD_ARGS}|{defines}|{OUTPUTS}".encode())
    for patch in patch_files(SERIES):
        digest.update(patch.name.encode() + patch.read_bytes())
    return digest.hexdigest()[:16]


def builds_root() -> Path:
    return cache_root() / "ovmf"


def source_version() -> str:
    return installed_source_version(BINARY_PACKAGE, label=LABEL)


def read_manifest(manifest: Path) -> OvmfBuild | None:
    """The build a ``manifest.json`` describes; None if it is missing, unreadable or of another format."""
    try:
        data = json.loads(manifest.read_text())
        if data.get("format") != FORMAT:
            return None
        return OvmfBuild(Path(data["directory"]), str(data["source"]), tuple(data["patches"]),
                         tuple(data["defines"]), tuple(data["capabilities"]), float(data["build_seconds"]),
                         tuple(data.get("notes", ())))
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return None


def find_build() -> OvmfBuild | None:
    """The published build of this checkout's series for the installed ``ovmf``'s source, if there is
    one with both images (no compiler, no download)."""
    try:
        source = source_version()
    except ImageError:
        return None
    build = read_manifest(builds_root() / f"{NAME}-{build_key(source)}" / "manifest.json")
    return build if build is not None and _ready(build) else None


def _ready(build: OvmfBuild) -> bool:
    return build.code.is_file() and build.vars.is_file()


def ensure_build(progress: Progress = lambda msg: None, jobs: int | None = None) -> OvmfBuild:
    """Build (or reuse) guestcompat's OVMF for this checkout's series; returns the published build."""
    source = source_version()
    final = builds_root() / f"{NAME}-{build_key(source)}"

    def make(work: Path) -> OvmfBuild:
        started = time.monotonic()
        notes = _build(work, source, jobs or os.cpu_count() or 1, progress)
        shutil.rmtree(work / "src", ignore_errors=True)  # sources and objects: ~1.5 GB, not needed to run
        shutil.rmtree(work / "toolchain", ignore_errors=True)
        return OvmfBuild(final, source, patch_list(), DEFINES, capabilities(), round(time.monotonic() - started, 1),
                         tuple(notes))

    return publish(final, find_build, make, ready=_ready)


def build_environment(tree: Path, toolchain: Path | None) -> dict[str, str]:
    """What ``. edksetup.sh`` would export, without a shell; *toolchain* (a directory whose ``gcc``
    is ccache) becomes GCC5_BIN."""
    env = dict(os.environ)
    env.update(WORKSPACE=str(tree), EDK_TOOLS_PATH=str(tree / "BaseTools"), CONF_PATH=str(tree / "Conf"),
               PYTHON_COMMAND="python3", PYTHON3_ENABLE="TRUE",
               PATH=f"{tree / 'BaseTools' / 'BinWrappers' / 'PosixLike'}:{env.get('PATH', '/usr/bin:/bin')}")
    env.pop("PACKAGES_PATH", None)
    if toolchain is not None:
        # Paths inside the tree are hashed relative to it, and the work directory's name (it holds the
        # builder's pid) is not hashed: a rebuild in another directory hits the cache.
        env.update(GCC5_BIN=f"{toolchain}/", CCACHE_BASEDIR=str(tree), CCACHE_NOHASHDIR="1")
    return env


def ccache_toolchain(work: Path) -> Path | None:
    """A GCC5_BIN prefix directory whose ``gcc`` is ccache (which then runs the real gcc from PATH);
    None without ccache."""
    ccache = shutil.which("ccache")
    if ccache is None:
        return None
    folder = work / "toolchain"
    folder.mkdir()
    (folder / "gcc").symlink_to(ccache)
    for tool in ("gcc-ar", "objcopy"):
        real = shutil.which(tool)
        if real is None:
            raise ImageError(f"{LABEL}: {tool} is not installed (binutils/gcc; run `make setup`)")
        (folder / tool).symlink_to(real)
    return folder


def _build(work: Path, source: str, jobs: int, progress: Progress) -> list[str]:
    log = work / "build.log"
    notes: list[str] = []
    tree = _source(work, SOURCE_PACKAGE, source, log, progress, label=LABEL)
    _apply(tree, SERIES, log, progress, label=LABEL)
    toolchain = ccache_toolchain(work)
    if toolchain is None:
        notes.append("built without ccache (not installed)")
    env = build_environment(tree, toolchain)
    cc = ["CC=ccache gcc", "CXX=ccache g++"] if toolchain is not None else []
    progress("building edk2's BaseTools")
    _run(["make", "-C", "BaseTools", "ARCH=X64", f"-j{jobs}", *cc], tree, "edk2 BaseTools", log, env, label=LABEL)
    conf = tree / "Conf"
    conf.mkdir(exist_ok=True)
    for name in ("build_rule", "tools_def", "target"):  # what edksetup.sh copies
        shutil.copyfile(tree / "BaseTools" / "Conf" / f"{name}.template", conf / f"{name}.txt")
    progress(f"building OVMF ({PLATFORM}, {' '.join(DEFINES)}) with {jobs} jobs (~4 min cold on 2 cores)")
    defines = [arg for define in DEFINES for arg in ("-D", define)]
    _run(["python3", str(tree / "BaseTools" / "Source" / "Python" / "build" / "build.py"), *BUILD_ARGS,
          "-n", str(jobs), *defines], tree, "OVMF build", log,
         {**env, "PYTHONPATH": str(tree / "BaseTools" / "Source" / "Python")}, label=LABEL)
    for built, published in OUTPUTS:
        path = tree / BUILD_DIR / "FV" / built
        if not path.is_file():
            raise ImageError(f"{LABEL}: the build left no {BUILD_DIR}/FV/{built} (see {log})")
        shutil.copy2(path, work / published)
    return notes
