from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from jobs.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USERNAME (creating the user if needed); the token is the last line printed."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--superuser", action="store_true", help="make the user a superuser (and staff)")
        parser.add_argument("--comment", default="created by createapitoken")

    def handle(self, username, superuser, comment, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
        if superuser:
            user.is_superuser = user.is_staff = True
        user.save()
        _, raw = ApiToken.issue(user, comment)
        self.stdout.write(f"{'Created' if created else 'Found'} user {username}; new API token:")
        self.stdout.write(raw)
