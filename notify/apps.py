from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "notify"
    verbose_name = "Notification channels"
    default_auto_field = "django.db.models.BigAutoField"
