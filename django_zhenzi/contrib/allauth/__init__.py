"""django-allauth's phone sign-up and sign-in by SMS code, sent through django-zhenzi.

Add ``"django_zhenzi.contrib.allauth"`` to INSTALLED_APPS (beside allauth) and set
``ACCOUNT_ADAPTER = "django_zhenzi.contrib.allauth.adapter.ZhenziAccountAdapter"``, or mix the
adapter into your own. Needs ``pip install django-zhenzi[allauth]``.
"""
