"""Compare what the guest saw with what the compiled profile expects.

Rule per expectation:
* the guest shows the *wanted* value → pass;
* it shows exactly the *presented* value of a known deviation → deviation
  (reported, does not fail the run);
* the compiler could not predict the value (``<unknown>``) and the deviation
  is known → deviation, with the observed value recorded;
* anything else → fail.
Functions the guest shows at addresses no expectation covers fail too, and so
do /vdevice nodes (pseries) no expectation covers, so an extra device can
never slip through.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.selectors import Pci, Vdevice, parse
from guestcompat.emulation.fidelity import UNKNOWN, Expectation, FidelityReport, Value, fmt
from guestcompat.harness.observe import observe, observed_pci_addresses, observed_vdevices


class Status(enum.Enum):
    PASS = "pass"
    DEVIATION = "deviation"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    selector: str
    category: str
    subject: str
    wanted: Value
    presented: Value
    observed: Value
    status: Status
    note: str = ""

    def line(self) -> str:
        text = f"{self.selector}: wanted {fmt(self.wanted)}, guest shows {fmt(self.observed)}"
        if self.status is Status.FAIL and self.presented != self.wanted:
            text += f" (expected on this target: {fmt(self.presented)})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"selector": self.selector, "category": self.category, "subject": self.subject,
                "wanted": _jsonable(self.wanted), "presented": _jsonable(self.presented),
                "observed": _jsonable(self.observed), "status": self.status.value, "note": self.note}


def _jsonable(value: Value) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _matches(expectation: Expectation, observed: Value) -> bool:
    wanted, tolerance = expectation.wanted, expectation.tolerance
    if tolerance is not None and isinstance(wanted, (int, float)) and isinstance(observed, (int, float)) \
            and not isinstance(observed, bool):
        return abs(observed - wanted) <= tolerance * abs(wanted)
    return observed == wanted


def judge(expectation: Expectation, observed: Value) -> CheckResult:
    if _matches(expectation, observed):
        status, note = Status.PASS, ""
    elif expectation.reason and (observed == expectation.presented or expectation.presented == UNKNOWN):
        status, note = Status.DEVIATION, expectation.reason
    else:
        status, note = Status.FAIL, expectation.reason or ""
    return CheckResult(expectation.selector, expectation.category, expectation.subject, expectation.wanted,
                       expectation.presented, observed, status, note)


def compare(report: FidelityReport, fingerprint: Fingerprint) -> list[CheckResult]:
    results = [judge(e, observe(fingerprint, e.selector)) for e in report.expectations]
    selectors = [parse(e.selector) for e in report.expectations]
    covered = {s.address for s in selectors if isinstance(s, Pci) and s.field == "present"}
    for address, ids in observed_pci_addresses(fingerprint):
        if address not in covered:
            results.append(CheckResult(str(Pci(address, "present")), "placement", address, None, None, True,
                                       Status.FAIL, f"unexpected PCI function {ids}"))
    nodes = {s.node for s in selectors if isinstance(s, Vdevice) and s.field == "present"}
    for node in observed_vdevices(fingerprint):
        if node not in nodes:
            results.append(CheckResult(str(Vdevice(node, "present")), "placement", node, None, None, True,
                                       Status.FAIL, "unexpected VIO device in the device tree"))
    return results
