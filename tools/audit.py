"""``make audit``: pip-audit over the locked requirements, honest about what it checked.

pip-audit asks PyPI's per-release JSON API (``/pypi/<name>/<version>/json``) for the
advisories of each pinned version. Where that API cannot be reached (an offline machine,
a mirror that serves only the simple index) pip-audit skips every package and still says
"No known vulnerabilities found". This wrapper tells the three outcomes apart:

- a known vulnerability: listed, exit 1 (unless its id is in ``IGNORED`` with a reason);
- every package audited and clean: exit 0;
- the advisory data unreachable for some or all packages: a warning naming how many,
  exit 0, or exit 1 with ``TAGSTREAM_AUDIT_REQUIRED=1`` (where the network is known to
  be there, e.g. a release pipeline).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Advisory id -> why it does not apply to tagstream. Every entry needs its reason.
IGNORED: dict[str, str] = {}


def main(requirements: list[str]) -> int:
    audit = Path(sys.executable).with_name("pip-audit")
    argv = [str(audit), "--disable-pip", "--progress-spinner", "off", "-f", "json"]
    for path in requirements:
        argv += ["-r", path]
    for advisory in IGNORED:
        argv += ["--ignore-vuln", advisory]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # nosec B603
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit failed: {(done.stderr or done.stdout).strip()[-2000:]}")
        return _unreachable("pip-audit could not run its queries")
    packages = report.get("dependencies", [])
    found = [(p["name"], p["version"], v) for p in packages for v in p.get("vulns", [])]
    for name, version, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
        print(f"VULNERABLE {name} {version}: {vuln['id']} (fixed in: {fixes})")
    if found:
        return 1
    skipped = [p["name"] for p in packages if "skip_reason" in p]
    if skipped:
        return _unreachable(
            f"no advisory data for {len(skipped)} of {len(packages)} locked packages "
            f"(e.g. {', '.join(skipped[:3])})"
        )
    print(f"pip-audit: {len(packages)} locked packages, no known vulnerabilities")
    return 0


def _unreachable(what: str) -> int:
    required = os.environ.get("TAGSTREAM_AUDIT_REQUIRED") == "1"
    print(
        f"pip-audit {'error' if required else 'warning'}: {what}; PyPI's per-release JSON "
        "API is not reachable from here, so those packages were NOT audited"
    )
    return 1 if required else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["requirements/dev.txt"]))
