"""Imports every model module so `Base.metadata` describes the whole schema.

Alembic's autogenerate and the tests compare against this metadata; a new domain
package adds its models module here.
"""

from shared.audit import models as audit_models
from shared.booking import models as booking_models
from shared.cases import models as case_models
from shared.citizens import models as citizen_models
from shared.db import Base
from shared.figures import models as figure_models
from shared.funds import models as fund_models
from shared.inbox import models as inbox_models
from shared.intake import models as intake_models
from shared.leases import models as lease_models
from shared.outbox import models as outbox_models
from shared.plans import models as plan_models
from shared.privacy import models as privacy_models
from shared.staff import models as staff_models

metadata = Base.metadata

__all__ = [
    "audit_models",
    "booking_models",
    "case_models",
    "citizen_models",
    "figure_models",
    "fund_models",
    "inbox_models",
    "intake_models",
    "lease_models",
    "metadata",
    "outbox_models",
    "plan_models",
    "privacy_models",
    "staff_models",
]
