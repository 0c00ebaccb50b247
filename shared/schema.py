"""Imports every model module so `Base.metadata` describes the whole schema.

Alembic's autogenerate and the tests compare against this metadata; a new domain
package adds its models module here.
"""

from shared.audit import models as audit_models
from shared.db import Base
from shared.staff import models as staff_models

metadata = Base.metadata

__all__ = ["audit_models", "metadata", "staff_models"]
