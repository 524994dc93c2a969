"""Building QEMU option strings safely.

QEMU splits option values on ``,`` (``-device vmxnet3,mac=...``); a comma
inside a value must be doubled (``VMware,, Inc.``). Every value that reaches
an argv goes through :func:`escape`; nothing is ever joined into a shell
string. Two exceptions, both measured: the short ``-global DRIVER.PROP=VALUE``
form takes its value literally (:func:`global_property`), and the x86 ``-cpu``
feature parser splits on every comma, escaped or not, so free text (the CPU
brand string) never goes on ``-cpu``.
"""

from __future__ import annotations


def escape(value: str) -> str:
    """Escape one option value for QEMU's QemuOpts parser (``,`` → ``,,``)."""
    return _plain(value).replace(",", ",,")


def _plain(value: str) -> str:
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"QEMU option values cannot contain newlines or NUL: {value!r}")
    return value


def global_property(driver: str, prop: str, value: object) -> str:
    """``-global DRIVER.PROP=VALUE`` in the short form, whose value QEMU takes *literally*.

    ``qemu_global_option`` matches ``%[^.=].%[^=]=`` and keeps everything after the first ``=`` as the
    value: commas are not split (and ``,,`` would reach the guest doubled). This is the only option
    form that carries an arbitrary string into a QOM property: the x86 ``-cpu`` feature parser splits
    on every comma, escaped or not (``model-id=A,,vendor=B`` sets ``vendor``, measured with qom-get)."""
    for part, what in ((driver, "driver"), (prop, "property")):
        if not part or "." in part or "=" in part or "," in part or len(part) > 63:
            raise ValueError(f"-global {what} name {part!r} cannot be written in the short form")
    text = "on" if value is True else "off" if value is False else str(value)
    return f"{_plain(driver)}.{_plain(prop)}={_plain(text)}"


def split_global(value: str) -> tuple[str, str] | None:
    """The inverse of :func:`global_property`: ``DRIVER.PROP=VALUE`` → (``DRIVER.PROP``, VALUE), read the
    way QEMU reads it; None when ``value`` is not the short form (QEMU then parses QemuOpts keys)."""
    name, eq, rest = value.partition("=")
    driver, dot, prop = name.partition(".")
    if not eq or not dot or not driver or not prop or "," in name or len(driver) > 63 or len(prop) > 63:
        return None
    return name, rest


def parse_option(option: str, value: str) -> tuple[str, dict[str, str]]:
    """``(head, {key: value})`` of one argv option as QEMU reads it: the short ``-global`` form is
    literal (one key), everything else goes through :func:`split`. The argv checks and the fuzz tests
    read compiled argvs back with this, so an injected ``,key=value`` shows up as an extra key."""
    if option == "-global":
        short = split_global(value)
        if short is not None:
            return "", {short[0]: short[1]}
    if option == "-cpu":
        return split_cpu(value)
    return split(value)


def split_cpu(value: str) -> tuple[str, dict[str, str]]:
    """``-cpu MODEL,feature=value,...`` as x86's feature parser reads it: split on *every* comma (``,,``
    is no escape there, an empty item is a key of its own), so nothing with a comma can hide in a value."""
    head, *features = value.split(",")
    props: dict[str, str] = {}
    for feature in features:
        key, eq, rest = feature.partition("=")
        props[key] = rest if eq else "on"
    return head, props


def render(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return escape(str(value))


def opts(head: str | None = None, /, **props: object) -> str:
    """``head,key=value,...`` with every value escaped; ``None`` values are left out.

    Keys are QEMU's property names verbatim (``**{"io-reserve": 0}``): QEMU mixes
    ``-`` and ``_`` (``chassis_nr``), so no spelling is guessed.
    """
    parts = [escape(head)] if head else []
    for key, value in props.items():
        if value is None:
            continue
        parts.append(f"{key}={render(value)}")
    return ",".join(parts)


def pairs(head: str | None, items: list[tuple[str, object]]) -> str:
    """Like :func:`opts` for keys that repeat or contain characters Python names cannot (``value`` twice)."""
    parts = [escape(head)] if head else []
    parts.extend(f"{key}={render(value)}" for key, value in items if value is not None)
    return ",".join(parts)


def parse(value: str) -> list[tuple[str | None, str]]:
    """Split an option string back into ``(key, value)`` pairs (the inverse of :func:`pairs`).

    ``,,`` is an escaped comma; an item without ``=`` has key None (a ``head``
    such as the driver of ``-device``). Keys may repeat (``-smbios type=11``).
    """
    items: list[tuple[str | None, str]] = []
    for part in value.replace(",,", "\0").split(","):
        part = part.replace("\0", ",")
        key, eq, rest = part.partition("=")
        items.append((key, rest) if eq else (None, key))
    return items


def split(value: str) -> tuple[str, dict[str, str]]:
    """The inverse of :func:`opts`: ``head,key=value,...`` → (head, {key: value}).

    Used to check a compiled argv against what a QEMU build accepts; a first
    part containing ``=`` is a property, not a head (``-global a.b=c``); a later
    bare flag is QEMU's shorthand for ``flag=on``."""
    items = parse(value)
    head = items.pop(0)[1] if items[0][0] is None else ""
    props: dict[str, str] = {}
    for key, text in items:
        if key is None:
            props[text] = "on"
        else:
            props[key] = text
    return head, props
