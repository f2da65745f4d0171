"""One-time verification codes by SMS.

- ``send_code`` / ``check_code`` (in ``codes``): the use cases;
- ``forms``: the forms a site's own pages use; ``views``: ready-made request and check pages.
"""

from django_zhenzi.verification.codes import CODE_MASK, RateLimited, check_code, send_code

__all__ = ["CODE_MASK", "RateLimited", "check_code", "send_code"]
