"""The privacy notice (informativa, GDPR art. 13) the citizen reads and accepts (SPEC J8).

`VERSION` names the text in `notice/` that consents record; bump it whenever that text
changes, and every citizen who accepted an older one is asked to read the new one.
"""

from __future__ import annotations

VERSION = "2026-11"
# The name the rest of the code base has always imported (shared.citizens.service).
PRIVACY_NOTICE_VERSION = VERSION
