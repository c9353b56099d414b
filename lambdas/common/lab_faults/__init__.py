"""lab_faults: failure injection for the lab's functions (see config.py for the document format).

    from lab_faults import inject_faults

    @inject_faults
    def handler(event, context): ...
"""

from .config import MODE_ORDER, FaultConfig, FaultConfigError, parse_config
from .injector import PARAMETER_PREFIX, correlation_id_of, inject_faults
from .modes import DenylistedConnection, InjectedFault

__all__ = [
    "MODE_ORDER",
    "PARAMETER_PREFIX",
    "DenylistedConnection",
    "FaultConfig",
    "FaultConfigError",
    "InjectedFault",
    "correlation_id_of",
    "inject_faults",
    "parse_config",
]
