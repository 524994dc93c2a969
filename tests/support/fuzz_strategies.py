"""Hypothesis strategies for the standing fuzz targets (issue 13): mutated profiles, .vmx/.ovf descriptors,
capture texts, fingerprint/diff JSON and console frames, all starting from real inputs (the bundled
profiles, tests/data, the real VMware captures) so most examples get deep into the code."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from guestcompat.profiles.loader import list_profiles

DATA = Path(__file__).parent.parent / "data"
CAPTURES = Path("/work/shared/vmware-captures")

#: Strings a hostile or careless user writes: QEMU option syntax, control and bidi characters,
#: non-BMP text, huge and empty values.
HOSTILE = [
    "Xeon,model-id=EVIL", "a,,b", "x=y", ",id=evil", "VMware, Inc.", "on", "off", "", " ", "=",
    "a\nb", "a\0b", "\x85", "\u202eevil", "\u2066x", "\U0001F600", "\udcff", "-device", "@artefact/x",
    "../../etc/passwd", "/dev/sda.raw", "disk.vmdk", "x" * 300, "0" * 5000, "00:10.0", "0000:00:00.0,",
    "ff:1f.7", "-1", "1e9", "vmxnet3", "pvscsi", "e1000", "vmware/base", "/etc/passwd.toml",
]
#: Keys the model reads as guest-visible free text: where an injected option would come from.
TEXT_PATHS = [
    ("cpu", "model_id"), ("smbios", "system", "product"), ("smbios", "system", "manufacturer"),
    ("smbios", "system", "serial"), ("smbios", "system", "version"), ("smbios", "system", "family"),
    ("smbios", "bios", "vendor"), ("smbios", "bios", "version"), ("smbios", "baseboard", "product"),
    ("smbios", "chassis", "manufacturer"), ("smbios", "oem_strings"), ("platform", "kernel_hypervisor"),
    ("description",), ("devicetree", "host_model"), ("devicetree", "host_serial"),
]


def _bundled() -> list[tuple[str, dict]]:
    out = []
    for source in list_profiles():
        out.append((source.name, tomllib.loads(source.path.read_text())))
    return out


BUNDLED = _bundled()


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.text(max_size=40),
        st.integers(min_value=-(1 << 70), max_value=1 << 70),
        st.integers(min_value=-2, max_value=300),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
    )


def values() -> st.SearchStrategy[Any]:
    return st.recursive(scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["name", "kind", "address", "x", "reason",
                                                                      "image", "controller", "remove"]) | st.text(max_size=8),
                                                    inner, max_size=4)), max_leaves=8)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path / list index in a TOML-like tree (containers included)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, sub in node.items():
            out += _paths(sub, (*prefix, key))
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            out += _paths(sub, (*prefix, index))
    return out


def _get(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


def _set_new(tree: dict, path: tuple, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    if isinstance(node, dict):
        node[path[-1]] = value


@st.composite
def mutated_tree(draw, base: Any, extra_paths: list[tuple] = ()) -> Any:
    """``base`` (deep-copied) with a few mutations (none, sometimes, so valid inputs get deep too): a value
    replaced (any type), a key deleted, a list entry duplicated, an unknown key added, a free-text key
    set to a hostile string (twice as likely when there are free-text keys)."""
    tree = json.loads(json.dumps(base))
    ops = ["replace", "delete", "duplicate", "unknown"] + (["text"] * 4 if extra_paths else [])
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        paths = _paths(tree)
        op = draw(st.sampled_from(ops))
        if op == "text" and extra_paths:
            path = draw(st.sampled_from(extra_paths))
            value = draw(st.sampled_from(HOSTILE) | st.text(max_size=60))
            _set_new(tree, path, [value] if path[-1] == "oem_strings" else value)
            continue
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent = _get(tree, path[:-1])
        if op == "replace":
            parent[path[-1]] = draw(values())
        elif op == "delete":
            del parent[path[-1]]
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[path[-1]])))
        elif op == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values())
    return tree


@st.composite
def raw_bytes_mutation(draw, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten, inserted or cut (not valid UTF-8 / TOML / JSON / XML any more)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not out:
            break
        at = draw(st.integers(min_value=0, max_value=len(out) - 1))
        op = draw(st.sampled_from(["set", "insert", "cut"]))
        if op == "set":
            out[at] = draw(st.integers(0, 255))
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del out[at:at + draw(st.integers(1, 64))]
    return bytes(out)


@st.composite
def profile_documents(draw) -> tuple[str, bytes]:
    """(name, TOML bytes) of a mutated bundled profile, or its raw bytes mangled."""
    import tomli_w

    name, data = draw(st.sampled_from(BUNDLED))
    data = dict(data)
    if "extends" not in data and draw(st.booleans()):
        data["extends"] = name  # sometimes a child of the bundled one rather than a copy
    tree = draw(mutated_tree(data, TEXT_PATHS))
    try:
        text = tomli_w.dumps(tree).encode()
    except (TypeError, ValueError):
        text = tomli_w.dumps(data).encode()
    if draw(st.integers(0, 9)) == 0:
        text = draw(raw_bytes_mutation(text))
    return name, text


@st.composite
def line_mutations(draw, text: str, hostile_values: bool = True) -> str:
    """Line-level edits of a text file: a line deleted, duplicated, cut, replaced by garbage, or a
    ``"value"`` replaced by a hostile one."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "cut", "garbage", "value", "value"]))
        line = lines[at]
        if op == "delete":
            del lines[at]
        elif op == "duplicate":
            lines.insert(at, line)
        elif op == "cut":
            lines[at] = line[:draw(st.integers(0, max(0, len(line))))]
        elif op == "garbage":
            lines[at] = draw(st.text(max_size=80))
        elif hostile_values and '"' in line:
            head, _, rest = line.partition('"')
            _, _, tail = rest.rpartition('"')
            value = draw(st.sampled_from(HOSTILE) | st.text(max_size=30))
            lines[at] = f'{head}"{value}"{tail}'
        elif hostile_values and ":" in line:
            head, _, _ = line.partition(":")
            lines[at] = f"{head}:\t{draw(st.sampled_from(HOSTILE) | st.text(max_size=30))}"
    out = "\n".join(lines) + "\n"
    if draw(st.integers(0, 9)) == 0:
        out = draw(raw_bytes_mutation(out.encode("utf-8", "surrogatepass"))).decode("utf-8", "replace")
    return out


def vmx_texts() -> st.SearchStrategy[str]:
    """The sample and the real descriptors of tests/data/vmx-corpus (ESX 3 to ESXi 8, Workstation,
    Fusion, GSX), mutated line by line."""
    texts = [(DATA / "esxi67-web01.vmx").read_text()] + \
        [p.read_text(errors="replace") for p in sorted((DATA / "vmx-corpus").glob("*.vmx"))]
    return st.sampled_from(texts).flatmap(lambda t: line_mutations(t))


def ovf_texts() -> st.SearchStrategy[str]:
    return line_mutations((DATA / "esxi67-web01.ovf").read_text())


def _capture(name: str) -> str:
    for base in (CAPTURES, DATA / "lspci"):
        path = base / name
        if path.is_file():
            return path.read_text(errors="replace")
    return ""


LSPCI = [t for t in (_capture("fusion-ubuntu2010-jc.lspci.txt"), (DATA / "lspci" / "fusion-nn.txt").read_text(),
                     (DATA / "lspci" / "fusion-vvv.txt").read_text(), (DATA / "lspci" / "fusion-tv.txt").read_text())
         if t]
DMIDECODE = [t for t in (_capture("fusion-centos77-jc.dmidecode.txt"),) if t]


@st.composite
def capture_texts(draw) -> tuple[str | None, str | None]:
    lspci = draw(st.none() | st.sampled_from(LSPCI).flatmap(lambda t: line_mutations(t)))
    dmidecode = draw(st.none() | st.sampled_from(DMIDECODE).flatmap(lambda t: line_mutations(t)))
    return lspci, dmidecode


FINGERPRINT = json.loads((DATA / "esxi-6.5.fingerprint.json").read_text())


@st.composite
def fingerprint_texts(draw) -> str:
    """A mutated fingerprint JSON (values, types, deleted keys, duplicated entries), sometimes deeply nested
    or byte-mangled; or a ``run --json``-style wrapper."""
    tree = draw(mutated_tree(FINGERPRINT))
    if draw(st.integers(0, 19)) == 0:
        depth = draw(st.integers(100, 5000))
        tree = {"format": "guestcompat-fingerprint", "version": 1, "pci": "[" * depth + "]" * depth}
        return json.dumps(tree).replace('"' + "[" * depth + "]" * depth + '"', "[" * depth + "]" * depth)
    text = json.dumps(tree)
    if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
        text = json.dumps({"verdict": "pass", "fingerprint": tree})
    if draw(st.integers(0, 9)) == 0:
        text = draw(raw_bytes_mutation(text.encode("utf-8", "surrogatepass"))).decode("utf-8", "replace")
    return text


def probe_document() -> dict:
    """A probe document as the guest sends it: rebuilt from the stored fingerprint's raw sections."""
    return {"format": "guestcompat-probe", "version": 1, "run": "0" * 32, "pci": {}, "tools": {}}


@st.composite
def console_texts(draw) -> list[str]:
    """Console lines: kernel noise and a framed document (of a mutated document), then line-level damage
    (lines dropped, cut, duplicated, a second BEGIN, absurd headers)."""
    from guestcompat.detection.frame import encode_document

    doc = draw(mutated_tree({**probe_document(), "tools": {"lspci": {"status": "0", "stdout": LSPCI[0][:400]}}}))
    if draw(st.integers(0, 19)) == 0:
        depth = draw(st.integers(100, 3000))
        lines = encode_document({"format": "guestcompat-probe", "version": 1})
        payload = ('{"format":"guestcompat-probe","version":1,"pci":' + "[" * depth + "]" * depth + "}").encode()
        import base64
        import hashlib
        b64 = base64.b64encode(payload).decode()
        lines = [f"@@GUESTCOMPAT-BEGIN v1 sha256={hashlib.sha256(payload).hexdigest()} bytes={len(payload)}",
                 *["@@" + b64[i:i + 76] for i in range(0, len(b64), 76)], "@@GUESTCOMPAT-END"]
    else:
        try:
            lines = encode_document(doc)
        except (TypeError, ValueError):
            lines = encode_document(probe_document())
    lines = ["[    0.000000] Linux version 6.1.0", *lines, "reboot: Power down"]
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "cut", "dup", "begin", "header", "noise"]))
        if op == "drop":
            del lines[at]
        elif op == "cut":
            lines[at] = lines[at][:draw(st.integers(0, len(lines[at])))]
        elif op == "dup":
            lines.insert(at, lines[at])
        elif op == "begin":
            lines.insert(at, "@@GUESTCOMPAT-BEGIN v1 sha256=" + "0" * 64 + " bytes=3")
        elif op == "header":
            lines.insert(at, "@@GUESTCOMPAT-BEGIN v" + draw(st.sampled_from(["1", "9" * 5000, "²", "-1"]))
                         + " sha256=" + "0" * 64 + " bytes=" + draw(st.sampled_from(["5", "9" * 5000, "-3", "٣"])))
        else:
            lines.insert(at, draw(st.text(max_size=100)))
        if not lines:
            break
    return lines
