from shared.exports.definitions import EXPORTS
from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/exports"): COORDINATION,
    **{
        ("GET", f"/exports/{export.name}.{fmt.value}"): COORDINATION
        for export in EXPORTS.values()
        for fmt in export.formats
    },
}
