from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ZhenziConfig(AppConfig):
    name = "django_zhenzi"
    verbose_name = _("Zhenzi SMS")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_zhenzi import checks  # noqa: F401  (registers the system checks)
        from django_zhenzi.contrib import checks as contrib_checks  # noqa: F401  (and these)
        from django_zhenzi.engines import checks as dispatch_checks  # noqa: F401
