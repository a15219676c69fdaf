from django.core.management.base import BaseCommand

from registry.demo import DEMO_PASSWORDS, demo_registry, demo_users


class Command(BaseCommand):
    help = "Create one demo user per role and a demo model with versions walked through the workflow."

    def handle(self, *args, **options):
        users = demo_users()
        for line in demo_registry(users):
            self.stdout.write(f"  {line}")
        self.stdout.write(self.style.SUCCESS("\nDemo users (username / password / API token):"))
        for role, (user, token) in users.items():
            self.stdout.write(f"  {user.username:<9} {DEMO_PASSWORDS[role]:<22} {token}")
