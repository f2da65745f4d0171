"""What the app's admin classes share: its stylesheet, and read-only access to rows the app
writes itself."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

#: The app's admin stylesheet (badges, compact columns, the chart).
STYLESHEET = {"all": ["django_zhenzi/admin.css"]}


class ReadOnlyAdminMixin:
    """Rows the app writes itself: viewable, never added, edited or deleted by hand (every row
    is history; ``zhenzi_cleanup`` removes old ones). Also for inlines, whose ``has_add_permission``
    takes the parent object."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A read-only model admin with the app's stylesheet."""

    class Media:
        css = STYLESHEET
