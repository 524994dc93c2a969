"""The capture script inside a booted probe guest sees what the probe itself sees (key fields)."""

from __future__ import annotations

import pytest

from guestcompat.detection.capture_script import load_capture_document, render_capture_script
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.payload import ProbePayload, probe_payload
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.target import Target
from guestcompat.harness.qemu_runner import boot
from guestcompat.harness.run import boot_image, run_compiled
from guestcompat.images.build import ImageSpec, ensure_image
from guestcompat.profiles.loader import load

pytestmark = [pytest.mark.boot, pytest.mark.usefixtures("leaves_nothing_behind")]

# Runs the capture as a user would (its stdout to a file), then frames that file for the serial
# console exactly as probe.sh frames its document, so the harness's reader can collect it.
# PATH is a root login shell's (the init's own has no /usr/bin, where the image keeps the tools).
WRAPPER = """#!/bin/sh
echo 1 > /proc/sys/kernel/printk
read -r t0 _ < /proc/uptime
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh /probe/gc-capture.sh > /tmp/capture.json 2> /tmp/capture.err
read -r t1 _ < /proc/uptime
echo "capture: started at $t0 s, done at $t1 s of guest uptime"
sha256sum /tmp/capture.json > /tmp/capture.sha
read -r sha _ < /tmp/capture.sha
set -- $(wc -c < /tmp/capture.json)
printf '\\n@@GUESTCOMPAT-BEGIN v1 sha256=%s bytes=%s\\n' "$sha" "$1"
base64 /tmp/capture.json | sed 's/^/@@/'
echo '@@GUESTCOMPAT-END'
"""


def test_capture_in_guest_agrees_with_probe(tmp_path):
    compiled = compile_profile(load("vmware/esxi-6.5"), Target("x86_64", "pc", "tcg"))
    probed = run_compiled(compiled, timeout=240).fingerprint
    base = probe_payload(compiled.arch)
    files = {**base.files, "/probe/gc-capture.sh": (render_capture_script().encode(), 0o755),
             "/probe/wrapper.sh": (WRAPPER.encode(), 0o755)}
    payload = ProbePayload(files=files, entry="/probe/wrapper.sh")
    image = ensure_image(ImageSpec(arch=compiled.arch, modaliases=compiled.modaliases, payload=payload,
                                   kernel_form=compiled.kernel_form or None))
    result = boot(compiled, boot_image(compiled, image), timeout=240)
    doc = load_capture_document(__import__("json").dumps(result.document), "guest capture")
    captured = Fingerprint.from_document(doc)
    print(next(line for line in result.console if line.startswith("capture: started")))
    for label, fp in (("capture", captured), ("probe", probed)):
        runs = fp.tools.runs if fp.tools else {}
        print(label, "tool centiseconds:", {k: r.centiseconds for k, r in sorted(runs.items())})

    assert [(f.ref, f.vendor, f.device, f.subsystem_vendor, f.subsystem_device, f.class_code, f.driver)
            for f in captured.pci] == [(f.ref, f.vendor, f.device, f.subsystem_vendor, f.subsystem_device,
                                        f.class_code, f.driver) for f in probed.pci]
    assert captured.dmi == probed.dmi and captured.dmi["sys_vendor"] == "VMware, Inc."
    assert captured.smbios == probed.smbios
    assert {n.mac for n in captured.net} == {n.mac for n in probed.net}
    assert [(b.name, b.vendor, b.model, b.pci) for b in captured.block] == \
        [(b.name, b.vendor, b.model, b.pci) for b in probed.block]
    assert captured.tools is not None and probed.tools is not None
    assert [(d.slot, d.vendor, d.device) for d in captured.tools.lspci] == \
        [(d.slot, d.vendor, d.device) for d in probed.tools.lspci]
    assert captured.tools.detect_virt == probed.tools.detect_virt == "vmware"
    assert captured.tools.dmidecode == probed.tools.dmidecode
    assert {k: v.predictable for k, v in captured.tools.net_names.items()} == \
        {k: v.predictable for k, v in probed.tools.net_names.items()}
    assert captured.hypervisor_lines == probed.hypervisor_lines
    # What the capture cannot do, and says by its absence: no native helper, so no CPUID/backdoor.
    assert captured.cpuid == {} and probed.cpuid
