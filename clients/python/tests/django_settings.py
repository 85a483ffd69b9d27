"""The Django settings of the test app (``django_app``). Tooken's own
settings (TOOKEN_URL, TOOKEN_VERIFY_KEY) are set by each test, since the
server's address is known only once it runs."""

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "django_app"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
REST_FRAMEWORK = {
    # No Django sessions or users here: Tooken's permission class does it all.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
