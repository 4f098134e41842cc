"""The service layer: what the web and the CLI may ask of the application.

Every function takes a :class:`Service` (the store, the campaigns, the delivery rules)
and raises :class:`ServiceError` for a request it does not accept. Modules: ``intake``
and ``validation`` (appeals in), ``status`` (a supporter's view), ``log`` and ``views``
(the delivery log), ``operator`` (retry, cancel), ``reporting``, ``reported``
(self-reported actions), ``callbacks`` (provider status callbacks), ``health``.
"""

from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError

__all__ = ["ErrorKind", "Service", "ServiceError"]
