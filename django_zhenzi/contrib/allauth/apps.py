from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ZhenziAllauthConfig(AppConfig):
    name = "django_zhenzi.contrib.allauth"
    # allauth's own top-level app is labelled "allauth": this one needs a label of its own.
    label = "zhenzi_allauth"
    verbose_name = _("Zhenzi SMS for django-allauth")
    default_auto_field = "django.db.models.BigAutoField"
