from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_zhenzi.contrib.allauth.models import UserPhone


@admin.register(UserPhone)
class UserPhoneAdmin(admin.ModelAdmin):
    list_display = ["user", "number", "is_verified", "changed_at"]
    search_fields = ["number"]
    list_select_related = ["user"]
    # Numbers change through allauth's flows, which verify them; the admin only shows them.
    readonly_fields = ["user", "number", "verified_number", "changed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(boolean=True, description=_("verified"))
    def is_verified(self, phone: UserPhone) -> bool:
        return phone.verified
