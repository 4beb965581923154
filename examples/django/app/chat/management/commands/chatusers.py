"""``manage.py chatusers [--password PW] [NAME ...]``: the chat's demo
users (default alice and bob), made or given that password (a random one,
printed, when none is given)."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the chat's demo users (default: alice and bob)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", default=["alice", "bob"])
        parser.add_argument("--password", help="their password (default: a random one)")

    def handle(self, *args, names, password, **options):
        chosen = password or secrets.token_urlsafe(12)
        model = get_user_model()
        for name in names:
            user, created = model.objects.get_or_create(username=name)
            user.set_password(chosen)
            user.save()
            self.stdout.write("%s user %s" % ("created" if created else "updated", name))
        if not password:
            self.stdout.write("password: %s" % chosen)
