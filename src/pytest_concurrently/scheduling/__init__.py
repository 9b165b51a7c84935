"""The scheduler: which tests may start now, and the locks tests take
while they run. Nothing here knows about pytest.

- :mod:`.tickets`: what one test asks for;
- :mod:`.locks`: locks with keys, behind resources, groups and lives;
- :mod:`.policy`: the admission policy.
"""

from .locks import SHARED
from .policy import AdmissionPolicy
from .tickets import Access, Ticket

__all__ = ["SHARED", "Access", "AdmissionPolicy", "Ticket"]
