"""ImageSpec → GuestImage: a bootable kernel and an initramfs that runs the probe.

Everything comes from Debian packages, unpacked without root (no
debootstrap, no loop mounts), and everything is cached under
``cache_root()``::

    debs/<name>_<version>_<arch>.deb     downloaded packages (+ resolution.json)
    kernels/<pkg>_<version>_<arch>_<form>/
        vmlinux                          the bootable kernel of that form
        modules/                         depmod's index (no .ko files)
        ko/<path>.ko                     modules some image needed, kept for the next
        kernel.json
    tools/<key>/{root/,tools.json}       the guest tools' files (images.guesttools)
    images/<key>/{vmlinux,initrd.cpio,image.json}
    locks/, tmp/                         flock files; scratch (always removed)

The kernels/ level (images.kernels) exists so that a cache hit never has to
unpack the 400 MB kernel package or run depmod: the image key needs the
module load order, which needs depmod's index.

The guest's own tools (``arch.guest_tools``, images.guesttools) are unpacked
from their Debian packages with the shared libraries their ELF files need.

The image key hashes exactly what determines the bytes of the image: the
package versions (kernel, busybox, and every package the tool data names), the kernel form, the module set, the payload's content
hash, the /init text, the command line and a format version.  Profiles that
need the same modules share an image.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guestcompat.errors import ImageError
from guestcompat.paths import cache_root

from . import busybox as busybox_mod
from . import cache
from .debian import PackageRef, PackageSource, unpack
from .guesttools import ToolFile, ToolTree, collect, load_toolset
from .init import render_init
from .initramfs import write_archive
from .kernels import ensure_kernel, ensure_modules, load_kernel, scratch
from .modules import Resolution, resolve_cached
from .rootfs import check_payload, rootfs_entries

#: Bump whenever the image layout or the way it is built changes.
FORMAT_VERSION = 2
#: Bump when the layout of tools/<key>/ changes.
TOOLS_FORMAT = 1
BUSYBOX_PACKAGE = "busybox-static"
#: Arguments every image wants on the kernel command line: a crashed /init
#: (kernel panic) reboots at once, which QEMU's -no-reboot turns into an exit
#: instead of a hang until the harness times out.
BASE_CMDLINE = "panic=-1"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageSpec:
    """What the image must contain.

    ``arch`` is duck-typed (an ArchStrategy): ``name``, ``debian_arch``,
    ``kernel_package``, ``kernel_form``.  ``payload`` is duck-typed (a
    ProbePayload): ``files`` {guest path: (bytes, mode)}, ``entry``,
    ``content_hash``.
    """

    arch: Any
    modaliases: tuple[str, ...]
    payload: Any
    extra_cmdline: str = ""
    kernel_form: str | None = None
    """How the kernel is booted; None = the architecture's default form (EFI firmware needs a bzImage)."""

    @property
    def form(self) -> str:
        return self.kernel_form or self.arch.kernel_form


@dataclass(frozen=True)
class GuestImage:
    """A built image in the cache.

    ``cmdline`` holds the kernel arguments the image needs; the harness
    appends it to its own (``console=...``).  ``unmatched_aliases`` lists the
    spec's modaliases no module or built-in driver claims (only known right
    after ``ensure_image``; empty from ``list_images``).
    """

    kernel: Path
    initrd: Path
    kernel_version: str
    packages: Mapping[str, str]
    key: str
    modules: tuple[str, ...]
    unmatched_aliases: tuple[str, ...] = ()
    cmdline: str = ""
    arch: str = ""
    built: float = field(default=0.0, compare=False)


def _noop(_msg: str) -> None:
    pass


# --------------------------------------------------------------------------
# images/


def image_key(*, arch: Any, form: str, kernel: PackageRef, busybox: PackageRef, modules: Iterable[str],
              payload_hash: str, init_text: str, extra_cmdline: str,
              tools: Iterable[str] = (), tool_packages: Iterable[PackageRef] = (),
              tool_data: str = "") -> str:
    """Hash of everything that determines the image's bytes (see module docstring)."""
    material = {
        "format": FORMAT_VERSION,
        "arch": arch.name,
        "debian_arch": arch.debian_arch,
        "kernel_form": form,
        "kernel": [kernel.name, kernel.version, kernel.arch],
        "busybox": [busybox.name, busybox.version, busybox.arch],
        "modules": sorted(modules),
        "payload": payload_hash,
        "init": hashlib.sha256(init_text.encode()).hexdigest(),
        "cmdline": extra_cmdline,
        "tools": sorted(tools),
        "tool_packages": sorted([r.name, r.version, r.arch] for r in tool_packages),
        "tool_data": tool_data,
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _image_from_json(directory: Path, unmatched: tuple[str, ...] = ()) -> GuestImage | None:
    meta = cache.read_json(directory / "image.json")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        return None
    try:
        return GuestImage(
            kernel=directory / meta["kernel"], initrd=directory / meta["initrd"],
            kernel_version=meta["kernel_version"], packages=dict(meta["packages"]),
            key=meta["key"], modules=tuple(meta["modules"]), unmatched_aliases=unmatched,
            cmdline=meta["cmdline"], arch=meta["arch"], built=float(meta.get("built", 0.0)))
    except (KeyError, TypeError, ValueError):
        return None


def list_images() -> list[GuestImage]:
    """Every complete image in the cache, newest first."""
    base = cache_root() / "images"
    if not base.is_dir():
        return []
    found = [img for d in base.iterdir()
             if d.is_dir() and not d.name.startswith(".")
             and (img := _image_from_json(d)) is not None]
    return sorted(found, key=lambda i: i.built, reverse=True)


def _build_cmdline(extra: str) -> str:
    return " ".join(part for part in (BASE_CMDLINE, extra.strip()) if part)


def ensure_image(spec: ImageSpec, progress: Progress | None = None) -> GuestImage:
    """The cached image for *spec*, building whatever part of it is missing.

    Safe to call from several processes at once: each artefact is built
    under its own flock and published atomically.
    """
    say = progress or _noop
    root = cache_root()
    arch = spec.arch
    files: Mapping[str, tuple[bytes, int]] = spec.payload.files
    check_payload(files, spec.payload.entry)
    init_text = render_init(spec.payload.entry)

    source = PackageSource(root / "debs", say)
    meta = arch.kernel_package
    tool_names = tuple(getattr(arch, "guest_tools", ()))
    toolset = load_toolset(arch.debian_arch) if tool_names else None
    tool_pkgs = toolset.packages(tool_names) if toolset else ()
    resolved = source.resolve([BUSYBOX_PACKAGE, *tool_pkgs], [meta], arch.debian_arch)
    form = spec.form
    kernel_ref = source.choose(
        f"the kernel ({meta}:{arch.debian_arch})", resolved[meta],
        have=lambda r: load_kernel(root, r, form) is not None)
    kb = ensure_kernel(root, source, kernel_ref, form, say,
                       wanted=lambda index: index.resolve(spec.modaliases).load_order)
    busybox_ref = source.choose(f"{BUSYBOX_PACKAGE}:{arch.debian_arch}", resolved[BUSYBOX_PACKAGE])

    tool_refs = {p: source.choose(f"{p}:{arch.debian_arch}", resolved[p]) for p in tool_pkgs}

    resolution: Resolution = resolve_cached(kb.index_dir, spec.modaliases)
    key = image_key(arch=arch, form=form, kernel=kernel_ref, busybox=busybox_ref,
                    modules=resolution.load_order, payload_hash=spec.payload.content_hash,
                    init_text=init_text, extra_cmdline=spec.extra_cmdline,
                    tools=tool_names, tool_packages=tool_refs.values(),
                    tool_data=toolset.digest if toolset else "")
    final = root / "images" / key
    if (img := _image_from_json(final, resolution.unmatched)) is not None:
        say(f"image {key} is cached")
        return img

    with cache.locked(root / "locks" / f"image-{key}.lock"):
        if (img := _image_from_json(final, resolution.unmatched)) is not None:
            return img
        cache.remove_stale_temps(final.parent, key)
        ko_files = ensure_modules(root, source, kb, resolution.load_order, say)
        tree = _tool_tree(toolset, tool_names, tool_refs, source, say)
        busybox_deb = source.fetch(busybox_ref)
        with scratch(root, "busybox") as work, \
                cache.building_dir(final) as out:
            say(f"unpacking {busybox_ref.name} {busybox_ref.version}")
            unpack(busybox_deb, work / "busybox")
            bb = _find_busybox(work / "busybox")
            applets, from_table = busybox_mod.applets(bb.read_bytes())
            if not from_table:
                say("busybox applet table not found; linking the fixed applet set")
            say(f"writing the initramfs ({len(resolution.load_order)} modules)")
            entries = rootfs_entries(
                busybox=bb, applets=applets, release=kb.release,
                modules=zip(resolution.load_order, ko_files, strict=True),
                payload_files=files, init_text=init_text,
                tool_files=[(f.guest, f.source, f.mode) for f in tree.files])
            size = write_archive(entries, out / "initrd.cpio")
            cache.link_or_copy(kb.vmlinux, out / "vmlinux")
            cache.write_json_atomic(out / "image.json", {
                "format": FORMAT_VERSION, "key": key, "arch": arch.name,
                "debian_arch": arch.debian_arch, "kernel_form": form,
                "kernel": "vmlinux", "initrd": "initrd.cpio", "initrd_size": size,
                "kernel_version": kb.release,
                "packages": {kernel_ref.name: kernel_ref.version,
                             busybox_ref.name: busybox_ref.version,
                             **{p: tool_refs[p].version for p in tree.packages}},
                "tools": list(tool_names), "tool_bytes": tree.size,
                "modules": list(resolution.load_order),
                "payload_hash": spec.payload.content_hash,
                "cmdline": _build_cmdline(spec.extra_cmdline), "built": time.time()})
        img = _image_from_json(final, resolution.unmatched)
        if img is None:
            raise ImageError(f"image {key} was built but its image.json cannot be read")
        say(f"image {key} built")
        return img


def _tool_tree(toolset: Any, names: tuple[str, ...], refs: Mapping[str, PackageRef],
               source: PackageSource, say: Progress) -> ToolTree:
    """The guest tools' files, from ``tools/<key>/`` in the cache, built once.

    Cached on their own (keyed by the tool data, the tool names and the exact
    version of every package the data names) so that images differing only
    in modules or payload do not unpack some forty packages again.
    """
    if toolset is None:
        return ToolTree((), ())
    root = cache_root()
    material = {"format": TOOLS_FORMAT, "data": toolset.digest, "tools": sorted(names),
                "packages": sorted([r.name, r.version, r.arch] for r in refs.values())}
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]
    final = root / "tools" / key
    if (tree := _load_tool_tree(final)) is not None:
        return tree
    with cache.locked(root / "locks" / f"tools-{key}.lock"):
        if (tree := _load_tool_tree(final)) is not None:
            return tree
        cache.remove_stale_temps(final.parent, key)
        with scratch(root, "tools") as work, cache.building_dir(final) as out:
            trees: dict[str, Path] = {}

            def unpacked(pkg: str) -> Path:
                if pkg not in trees:
                    if pkg not in refs:
                        raise ImageError(f"guest tools need package {pkg}, which is not in the "
                                         "tool data's package list")
                    dest = work / pkg
                    unpack(source.fetch(refs[pkg]), dest)
                    trees[pkg] = dest
                return trees[pkg]

            say(f"collecting guest tools: {', '.join(names)}")
            tree = collect(toolset, names, unpacked)
            for f in tree.files:
                dest = out / "root" / f.guest.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f.source, dest)
            cache.write_json_atomic(out / "tools.json", {
                "format": TOOLS_FORMAT, "key": key, "material": material,
                "files": [[f.guest, f.mode] for f in tree.files], "packages": list(tree.packages)})
        tree = _load_tool_tree(final)
        if tree is None:
            raise ImageError(f"guest tool tree {key} was built but its tools.json cannot be read")
        say(f"guest tools: {len(tree.files)} files, {tree.size / 1e6:.1f} MB "
            f"from {len(tree.packages)} packages")
        return tree


def _load_tool_tree(directory: Path) -> ToolTree | None:
    meta = cache.read_json(directory / "tools.json")
    if not isinstance(meta, dict) or meta.get("format") != TOOLS_FORMAT:
        return None
    try:
        files = tuple(ToolFile(g, directory / "root" / g.lstrip("/"), int(m)) for g, m in meta["files"])
        return ToolTree(files, tuple(meta["packages"]))
    except (KeyError, TypeError, ValueError):
        return None


def _find_busybox(root: Path) -> Path:
    for candidate in ("bin/busybox", "usr/bin/busybox"):
        if (root / candidate).is_file():
            return root / candidate
    raise ImageError(f"{BUSYBOX_PACKAGE} contains no bin/busybox")
