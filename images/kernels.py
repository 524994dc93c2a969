"""The per-kernel-package cache: ``kernels/<package>_<version>_<arch>_<form>/``.

Unpacking a kernel package (400 MB) and running depmod cost ~5-10 s; the
image key needs the module load order, which needs depmod's index.  So each
kernel package is prepared once: the bootable kernel of its form, depmod's
index (no .ko files) and, in ``ko/``, the modules some image needed.  A
cache hit — or a new module set whose modules are in ``ko/`` — then never
touches the package again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from guestcompat.errors import ImageError

from . import cache
from .debian import PackageRef, PackageSource, unpack
from .kernel import extract_kernel
from .modules import ModuleIndex, depmod, kernel_release, save_index

#: Bump whenever the kernels/ cache layout changes.
KERNEL_CACHE_FORMAT = 1

Progress = Callable[[str], None]


@dataclass(frozen=True)
class KernelBuild:
    """One kernel package, prepared once: vmlinux of a form + depmod's index."""

    directory: Path
    ref: PackageRef
    form: str
    release: str

    @property
    def vmlinux(self) -> Path:
        return self.directory / "vmlinux"

    @property
    def index_dir(self) -> Path:
        return self.directory / "modules"

    @property
    def ko_dir(self) -> Path:
        return self.directory / "ko"


def scratch(root: Path, label: str) -> AbstractContextManager[Path]:
    """A scratch dir under ``tmp/``, after removing those of killed builders."""
    cache.sweep_scratch(root / "tmp")
    return cache.scratch_dir(root / "tmp", label)


def kernel_dir(root: Path, ref: PackageRef, form: str) -> Path:
    """Where the prepared kernel of *ref* in *form* lives under the cache *root*."""
    return root / "kernels" / f"{ref.deb_filename.removesuffix('.deb')}_{form}"


def load_kernel(root: Path, ref: PackageRef, form: str) -> KernelBuild | None:
    """The prepared kernel if it is complete in the cache, else None."""
    directory = kernel_dir(root, ref, form)
    meta = cache.read_json(directory / "kernel.json")
    if not isinstance(meta, dict) or meta.get("format") != KERNEL_CACHE_FORMAT:
        return None
    return KernelBuild(directory, ref, form, str(meta["release"]))


def ensure_kernel(root: Path, source: PackageSource, ref: PackageRef, form: str,
                  progress: Progress, wanted: Callable[[ModuleIndex], Iterable[str]]
                  ) -> KernelBuild:
    """The prepared kernel of *ref*, building it (download, unpack, depmod) if needed.

    *wanted* picks, from the fresh index, modules worth keeping in ``ko/``
    while the package is unpacked anyway, so the first image of a kernel
    unpacks it only once.
    """
    directory = kernel_dir(root, ref, form)
    if (kb := load_kernel(root, ref, form)) is not None:
        return kb
    with cache.locked(root / "locks" / f"kernel-{directory.name}.lock"):
        if (kb := load_kernel(root, ref, form)) is not None:
            return kb
        cache.remove_stale_temps(directory.parent, directory.name)
        deb = source.fetch(ref)
        with scratch(root, "kernel") as work, \
                cache.building_dir(directory) as out:
            progress(f"unpacking {ref.name} {ref.version}")
            unpack(deb, work)
            release = kernel_release(work)
            progress(f"depmod {release}")
            moddir = depmod(work, release)
            progress(f"extracting the kernel ({form})")
            extract_kernel(form, work, release, out / "vmlinux")
            save_index(moddir, out / "modules")
            index = ModuleIndex.load(out / "modules")
            _copy_modules(moddir, out / "ko", wanted(index))
            cache.write_json_atomic(out / "kernel.json", {
                "format": KERNEL_CACHE_FORMAT, "package": ref.name, "version": ref.version,
                "arch": ref.arch, "form": form, "release": release})
        if (kb := load_kernel(root, ref, form)) is None:
            raise ImageError(f"kernel cache {directory} was built but cannot be read")
        return kb


def _copy_modules(moddir: Path, ko_dir: Path, rels: Iterable[str]) -> None:
    """Copy module files into the ko/ cache, each file published atomically."""
    for rel in rels:
        dest = ko_dir / rel
        if dest.is_file():
            continue
        src = moddir / rel
        if not src.is_file():
            raise ImageError(f"module {rel} is listed in modules.dep but not in the package")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{cache.TMP_PREFIX}{dest.name}-{os.getpid()}")
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dest)


def ensure_modules(root: Path, source: PackageSource, kb: KernelBuild,
                   rels: Sequence[str], progress: Progress) -> list[Path]:
    """Host files of the modules *rels*, unpacking the kernel package only if needed."""
    missing = [r for r in rels if not (kb.ko_dir / r).is_file()]
    if missing:
        with cache.locked(root / "locks" / f"kernel-{kb.directory.name}.lock"):
            missing = [r for r in rels if not (kb.ko_dir / r).is_file()]
            if missing:
                deb = source.fetch(kb.ref)
                with scratch(root, "modules") as work:
                    progress(f"unpacking {kb.ref.name} {kb.ref.version} for {len(missing)} modules")
                    unpack(deb, work)
                    _copy_modules(work / "lib" / "modules" / kb.release, kb.ko_dir, missing)
    return [kb.ko_dir / r for r in rels]


